import ArgumentParser
import Foundation
import HDFormats

/// The checks every tool makes on where it will write, before any long work: the output is not one
/// of its inputs (same device and inode, so another spelling, a symlink or a hard link is caught),
/// is not something other than a regular file (a device node, a directory), and its directory
/// takes a temp file (the atomic write's first step), so a bad `-o` fails in a second, not after
/// a whole run.
public enum OutputPath {
    /// The device and inode `path` names (following symlinks), or nil when nothing is there.
    static func identity(_ path: String) -> (dev: UInt64, ino: UInt64, mode: UInt32)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino), UInt32(info.st_mode))
    }

    static func isDirectory(_ mode: UInt32) -> Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    static func isRegular(_ mode: UInt32) -> Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }

    static func kind(_ mode: UInt32) -> String {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFDIR): "a directory"
        case UInt32(S_IFCHR): "a character device"
        case UInt32(S_IFBLK): "a block device"
        case UInt32(S_IFIFO): "a named pipe"
        case UInt32(S_IFSOCK): "a socket"
        default: "not a regular file"
        }
    }

    /// Each input, and for an input that is a directory (a Hugging Face model directory) each file in it.
    static func inputFiles(_ inputs: [String]) -> [(path: String, dev: UInt64, ino: UInt64)] {
        var out: [(String, UInt64, UInt64)] = []
        for input in inputs {
            guard let id = identity(input) else { continue }
            out.append((input, id.dev, id.ino))
            if isDirectory(id.mode), let names = try? FileManager.default.contentsOfDirectory(atPath: input) {
                for name in names.sorted() {
                    let path = input + "/" + name
                    if let inner = identity(path), isRegular(inner.mode) { out.append((path, inner.dev, inner.ino)) }
                }
            }
        }
        return out
    }

    /// Refuses `output` (a file an atomic write will replace) when it exists and is not a regular file,
    /// or is the same file as one of `inputs` (usage errors: exit 64); then checks that a temp file can
    /// be created beside it (`AtomicFile.checkCreatable`, a FormatError otherwise). `flag` names the
    /// option in messages ("-o").
    public static func checkFile(_ output: String, flag: String = "-o", inputs: [String]) throws {
        if let id = identity(output) {
            guard isRegular(id.mode) else {
                throw ValidationError("\(flag) \(output): expected a regular file to write (or a new name), found \(kind(id.mode)); "
                                      + "it would be replaced, so choose another path")
            }
            if let input = inputFiles(inputs).first(where: { $0.dev == id.dev && $0.ino == id.ino }) {
                throw ValidationError("\(flag) \(output) is the same file as the input \(input.path); "
                                      + "writing it would destroy the input, so choose another path")
            }
        }
        try AtomicFile.checkCreatable(output)
    }

    /// Refuses a directory output (`--hf-dir`) that exists and is not a directory, that is one of
    /// `inputs` or the directory holding one, or whose `files` (the names to be written in it) would
    /// replace an input or something other than a regular file; then, when the directory exists,
    /// checks that it takes a temp file.
    public static func checkDirectory(_ directory: String, flag: String, files: [String], inputs: [String]) throws {
        if let id = identity(directory) {
            guard isDirectory(id.mode) else {
                throw ValidationError("\(flag) \(directory): expected a directory (or a new name), found \(kind(id.mode)); choose another path")
            }
            let parents = inputs.map { identity($0).map { isDirectory($0.mode) } == true ? $0 : AtomicFile.parentDirectory(of: $0) }
            for (input, parent) in zip(inputs, parents) {
                if let p = identity(parent), p.dev == id.dev, p.ino == id.ino {
                    throw ValidationError("\(flag) \(directory) is the directory of the input \(input); "
                                          + "writing there could replace the input or its config and vocabulary, so choose another directory")
                }
            }
            for file in files { try checkFile(directory + "/" + file, flag: flag, inputs: inputs) }
            return
        }
        // Not there yet: the write creates it (with its parents); a failure then is reported by the
        // tool with what was and was not written.
    }
}
