//! `ocm`: the command line. Filled in by the shells; for now it only explains itself.

fn main() {
    println!("ocm {}: Online Chat Messenger (server and client arrive with the shells)", env!("CARGO_PKG_VERSION"));
}
