//! `ocm replay FILE [--compare]`: runs a recorded trace through a fresh core
//! ([`ocm_core::record::replay`]) and prints what it went through on stdout.

use crate::cli::ReplayArgs;
use crate::exit;
use ocm_core::record::{self, TraceError};

/// Runs the replay command and returns the exit code.
pub fn run(args: ReplayArgs) -> u8 {
    let trace = match std::fs::read(&args.file) {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("ocm: error: cannot read {}: {e}", args.file.display());
            return exit::ERROR;
        }
    };
    match record::replay(&trace, args.compare) {
        Ok(summary) => {
            if let Ok(reader) = record::TraceReader::new(&trace) {
                let header = reader.header();
                println!(
                    "trace: {} bytes, protocol={}, outputs {}",
                    trace.len(),
                    header.protocol.name(),
                    if header.outputs {
                        "recorded"
                    } else {
                        "not recorded"
                    }
                );
            }
            println!("{summary}");
            if args.compare {
                println!("outputs identical to the recording");
            }
            exit::OK
        }
        Err(error) => {
            eprintln!("ocm: error: {}: {error}", args.file.display());
            match error {
                TraceError::Violation { .. } | TraceError::Mismatch { .. } => exit::REPLAY_FAILED,
                _ => exit::ERROR,
            }
        }
    }
}
