fn main() {
    eprintln!("configgen: not built yet");
    std::process::exit(1);
}
