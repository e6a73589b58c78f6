// zlib: raw inflate/deflate (windowBits -15) for zip members, crc32 for their checks.
#include <zlib.h>
