import Foundation

/// The process's peak resident set, for the benchmark commands.
public enum ProcessMemory {
    /// Peak RSS in MiB from `VmHWM` in /proc/self/status. Not `getrusage`'s `ru_maxrss`: Linux keeps
    /// that across `execve`, so a tool started by a big parent (a Python benchmark driver holding a
    /// model) would report the parent's peak. Falls back to `ru_maxrss` where /proc is missing.
    public static func peakResidentMiB() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count >= 2, let kib = Double(fields[1]) { return kib / 1024 }
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
