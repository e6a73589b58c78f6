import ArgumentParser

@main
struct HDInfer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hd-infer", subcommands: [Bench.self], defaultSubcommand: Bench.self)
}
struct Bench: ParsableCommand { func run() throws {} }
