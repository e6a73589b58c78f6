import ArgumentParser
import Foundation
import HDCommandLine
import HDExport
import HDFormats
import HDModel
import HDTensor

@main
struct HDExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-export",
        abstract: "Shrink a pruned student.ckpt into the dense, smaller BERT it equals; verify it; write it.",
        discussion: """
        --shrink reads a student.ckpt written by a pruning run of hd-distill (full-width weights and \
        hd.mask.*), removes every pruned row and column, folds the attention scale into the query weights, \
        runs the masked and the dense model on --check-sequences random sequences (plus a padded one) and \
        refuses to write anything when a hidden state or the MLM logits differ by more than --tolerance \
        (relative to the tensor's largest value). It then writes the canonical safetensors (-o, default \
        <stem>.safetensors beside the input) and, with --hf-dir, config.json + model.safetensors + vocab.txt \
        for transformers. Heads narrower than hidden / heads (HomoBERT prunes inside each head) and FFN \
        widths that differ per layer are zero-padded to the widths transformers' BertConfig states, with the \
        query scaled so its 1/√(hidden / heads) gives the student's attention exactly; the padded model is \
        checked against the dense one like the shrink. A hidden width that is not a multiple of the heads, \
        or heads wider than hidden / heads, has no exact layout: refused, naming widths that have one.

        --onnx writes the same dense model as ONNX (opset 17; inputs input_ids, attention_mask, \
        token_type_ids as int64 [batch, sequence]; outputs last_hidden_state and, with a pooler, \
        pooler_output), in the standard BERT subgraph onnxruntime's transformer optimiser fuses, at the \
        student's own widths. Weights above 2 GB (or with --onnx-external-data) go to <file.onnx>.data.

        Exit status: 0 ok, 64 bad usage, 65 bad input data (the message names the file, tensor or layer; \
        also when --hf-dir cannot be written for this shape, after the canonical file is written), 1 other.
        """)

    @Option(name: .long, help: ArgumentHelp("The student checkpoint to shrink.", valueName: "student.ckpt"))
    var shrink: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Canonical safetensors to write (default: <stem>.safetensors beside the input).", valueName: "path"))
    var output: String?

    @Option(name: .customLong("hf-dir"), help: ArgumentHelp("Also write config.json, model.safetensors and vocab.txt here for transformers.", valueName: "dir"))
    var hfDir: String?

    @Option(name: .customLong("onnx"), help: ArgumentHelp("Also write the dense student as an ONNX model (opset 17, its true widths) here.", valueName: "file.onnx"))
    var onnx: String?

    @Flag(name: .customLong("onnx-external-data"), help: "Put the ONNX weights in <file.onnx>.data beside it (automatic above 2 GB).")
    var onnxExternalData = false

    @Option(name: .customLong("check-sequences"), help: "Random sequences of the equivalence check (one padded row is added).")
    var checkSequences = 4

    @Option(name: .long, help: "Largest relative error of any compared tensor that counts as equal.")
    var tolerance: Float = 1e-5

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        if checkSequences < 1 { throw ValidationError("--check-sequences must be ≥ 1, found \(checkSequences)") }
        if !(tolerance > 0 && tolerance.isFinite) { throw ValidationError("--tolerance must be a finite number > 0, found \(tolerance)") }
        _ = try outputPath()
        if onnxExternalData && onnx == nil { throw ValidationError("--onnx-external-data needs --onnx FILE") }
        if let onnx, URL(fileURLWithPath: onnx).standardizedFileURL.path == URL(fileURLWithPath: try outputPath()).standardizedFileURL.path {
            throw ValidationError("--onnx \(onnx) is also the canonical output (-o); give the ONNX file its own name, e.g. student.onnx")
        }
    }

    /// `-o`, or `<stem>.safetensors` beside the input; never the input itself (that would replace
    /// the training run's only record with a file it cannot resume from).
    func outputPath() throws -> String {
        let path = output ?? (shrink as NSString).deletingPathExtension + ".safetensors"
        func resolved(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        if resolved(path) == resolved(shrink) {
            throw ValidationError("the output \(path) is the input checkpoint itself; pass -o with another path")
        }
        return path
    }

    func run() throws {
        try ToolErrors.reporting("hd-export", json: json) { try export() }
    }

    func export() throws {
        BLAS.setThreads(threads.resolved)
        let destination = try outputPath()
        try OutputPath.checkFile(destination, inputs: [shrink])
        if let onnx {
            try OutputPath.checkFile(onnx, flag: "--onnx", inputs: [shrink])
            if onnxExternalData { try OutputPath.checkFile(ONNXFile.externalDataPath(for: onnx), flag: "--onnx-external-data", inputs: [shrink]) }
        }
        if let hfDir { try OutputPath.checkDirectory(hfDir, flag: "--hf-dir", files: HuggingFaceDirectory.fileNames, inputs: [shrink]) }
        let student = try MaskedStudent(path: shrink)
        // A run without pruning (plain distillation, or --keep-layers alone) has no masks: its model
        // is already dense, and exports as it is — with every unit kept, the check below compares it
        // with itself through the same code as a pruned one.
        let masks = try student.masks ?? PruneMasks(config: student.model.config)
        let dense = try student.denseModel()
        let report = try Equivalence.measure(masked: student.model, masks: masks, dense: dense,
                                             batch: Equivalence.checkBatch(student.model.config, sequences: checkSequences))
        try report.check(tolerance: tolerance, file: shrink)

        let exported = try student.checkpoint(of: dense, source: shrink)
        let digest = try FileDigest.sha256(path: shrink)
        try SafeTensors.write(exported.canonicalTensorSet(sourceDigest: digest), to: destination)
        // ONNX: the dense model at its true widths (no padding), so onnxruntime runs the smaller model.
        var onnxWritten: Summary.ONNX?
        if let onnx {
            do {
                let proto = try BertONNXGraph.model(dense, metadata: ["hd.config": dense.config.jsonString(), "hd.source": shrink])
                let written = try ONNXFile.write(proto, to: onnx, externalData: onnxExternalData ? .always : .automatic)
                onnxWritten = Summary.ONNX(written, model: dense)
            } catch {
                ToolErrors.fail("hd-export", "\(onnx): --onnx not written: \(error); the canonical \(destination) is written and complete (hd-infer runs it)")
            }
        }
        // transformers' layout: the dense model as it is, or zero-padded heads and FFN when its widths
        // have an exact padded layout (checked against the dense model like the shrink itself); nil
        // with the reason (and the nearby widths that would work) when there is none.
        let needsPadding = HuggingFaceDirectory.unloadableReason(dense.config) != nil
        let unloadable = needsPadding ? HuggingFaceLayout.refusal(dense.config) : nil
        var hfPadding: Summary.Padding?
        // The canonical file is written: a failing --hf-dir (its padding check included) still gets
        // the summary (with the error) and a message saying which file is complete and which are not.
        var hfWritten: [String] = [], hfError: String?
        if let hfDir, unloadable == nil {
            do {
                var hfModel = exported
                if needsPadding {
                    let padded = try HuggingFaceLayout.padded(dense)
                    let paddingReport = try Equivalence.measure(reference: dense, candidate: padded,
                                                                batch: Equivalence.checkBatch(dense.config, sequences: checkSequences))
                    try paddingReport.check(tolerance: tolerance, file: shrink)
                    hfModel = try student.checkpoint(of: padded, source: shrink)
                    hfPadding = Summary.Padding(dense: dense.config, padded: padded.config, report: paddingReport)
                }
                try HuggingFaceDirectory.write(hfModel, to: hfDir, sourceDigest: digest) { hfWritten.append($0) }
            } catch {
                hfError = String(describing: error)
            }
        }

        var summary = try Summary(input: shrink, output: destination, hfDir: unloadable == nil && hfError == nil ? hfDir : nil,
                                  student: student, dense: dense, exportedNames: Set(exported.tensors.tensors.keys),
                                  report: report, tolerance: tolerance, hfUnloadable: unloadable)
        summary.hfPadding = hfPadding
        summary.onnx = onnxWritten
        if let hfError, let hfDir { summary.hfFailure = .init(dir: hfDir, error: hfError, written: hfWritten) }
        if json { try JSONOutput.print(summary) } else { summary.printText() }
        if let failure = summary.hfFailure { ToolErrors.fail("hd-export", failure.message(canonical: destination)) }
        if let hfDir, let unloadable {
            ToolErrors.fail("hd-export", "\(hfDir): --hf-dir not written: transformers' BertConfig has no exact layout for this model (\(unloadable)); the canonical \(destination) is written and complete, and hd-infer runs it")
        }
    }
}
