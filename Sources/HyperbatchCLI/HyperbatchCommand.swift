import ArgumentParser

/// The `hyperbatch` command line.
@main
struct HyperbatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hyperbatch",
        abstract: "Batch work the way production systems need it.",
        subcommands: [
            RunCommand.self, SubmitCommand.self, WorkerCommand.self, StatusCommand.self, ResultsCommand.self, CancelCommand.self, BenchCommand.self, EmulatorCommand.self,
        ]
    )

    /// Applies ``MallocTuning``, then parses and runs the command line as `AsyncParsableCommand.main()` does.
    static func main() async {
        MallocTuning.apply()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// `hyperbatch bench …`: benchmarks that report ratios against baselines measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark; each reports ratios against a baseline measured in the same run.",
        subcommands: [
            BenchCoreCommand.self, BenchEmulatorCommand.self, BenchDBCommand.self, BenchIntentsCommand.self,
            BenchFailuresCommand.self, BenchJobsCommand.self,
        ]
    )
}
