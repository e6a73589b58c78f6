print("hd-convert")
