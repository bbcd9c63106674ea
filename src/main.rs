fn main() -> std::process::ExitCode {
    adarat::cli::main()
}
