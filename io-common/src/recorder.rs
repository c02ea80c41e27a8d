//! [`Recorder`]: writes every input the core receives to a trace file
//! (`ocm server --record FILE`), in the format of [`ocm_core::record`], so `ocm replay`
//! can run the same session again through a fresh core.
//!
//! The file is created with mode 0600 (it holds tokens and messages), written through a
//! buffer flushed at least every second and at shutdown, and bounded: once the next
//! record would pass [`RecordOptions::max_bytes`], recording stops with one warning
//! and the file stays a valid trace of everything before. A write error stops it the
//! same way; the server itself goes on.

use ocm_core::record::{self, Header};
use ocm_core::{Input, Output};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default of [`RecordOptions::max_bytes`]: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// How often buffered records reach the file, at least.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where and how much to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOptions {
    /// The trace file (created or truncated).
    pub path: PathBuf,
    /// Stop recording before the file passes this size.
    pub max_bytes: u64,
    /// Also record the outputs each input caused, for `ocm replay --compare`.
    pub outputs: bool,
}

/// An open trace file.
#[derive(Debug)]
pub struct Recorder {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    outputs: bool,
    /// The time of the first input: every record's time is counted from it.
    base: Option<Instant>,
    written: u64,
    max_bytes: u64,
    last_flush: Instant,
    scratch: Vec<u8>,
}

impl Recorder {
    /// Creates the file and writes the header.
    pub fn create(options: &RecordOptions, header: &Header) -> io::Result<Recorder> {
        let mut open = OpenOptions::new();
        open.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open.open(&options.path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", options.path.display()),
            )
        })?;
        // An existing file keeps its mode through `open`: make it private too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        let mut recorder = Recorder {
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            path: options.path.clone(),
            outputs: options.outputs,
            base: None,
            written: 0,
            max_bytes: options.max_bytes,
            last_flush: Instant::now(),
            scratch: Vec::with_capacity(8 * 1024),
        };
        let header = Header {
            outputs: options.outputs,
            ..header.clone()
        };
        record::encode_header(&header, &mut recorder.scratch);
        recorder.write_scratch();
        if recorder.file.is_none() {
            return Err(io::Error::other(format!(
                "cannot write {}: limit too small for the header",
                options.path.display()
            )));
        }
        Ok(recorder)
    }

    /// True while records are being written (not stopped by the limit or an error).
    pub fn is_recording(&self) -> bool {
        self.file.is_some()
    }

    /// True when outputs are recorded too.
    pub fn records_outputs(&self) -> bool {
        self.outputs && self.is_recording()
    }

    /// Records one input fed to the core at `now`.
    pub fn input(&mut self, now: Instant, input: &Input<&[u8]>) {
        if self.file.is_none() {
            return;
        }
        let base = *self.base.get_or_insert(now);
        record::encode_input(
            now.saturating_duration_since(base),
            input,
            &mut self.scratch,
        );
        self.write_scratch();
    }

    /// Records one output of the input recorded last.
    pub fn output(&mut self, output: &Output) {
        if !self.records_outputs() {
            return;
        }
        record::encode_output(output, &mut self.scratch);
        self.write_scratch();
    }

    /// Flushes the buffer if the last flush is a second old (call it now and then).
    pub fn tick(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_flush) >= FLUSH_EVERY {
            self.last_flush = now;
            self.flush();
        }
    }

    /// Writes what is buffered to the file.
    pub fn flush(&mut self) {
        if let Some(file) = &mut self.file {
            if let Err(error) = file.flush() {
                self.stop(&format!("write failed: {error}"));
            }
        }
    }

    fn write_scratch(&mut self) {
        let len = self.scratch.len() as u64;
        let result = match &mut self.file {
            Some(_) if self.written + len > self.max_bytes => Err(format!(
                "the trace reached its limit of {} bytes",
                self.max_bytes
            )),
            Some(file) => file
                .write_all(&self.scratch)
                .map_err(|e| format!("write failed: {e}")),
            None => Ok(()),
        };
        self.scratch.clear();
        match result {
            Ok(()) => self.written += len,
            Err(why) => self.stop(&why),
        }
    }

    fn stop(&mut self, why: &str) {
        if let Some(mut file) = self.file.take() {
            let _ = file.flush();
            tracing::warn!(path = %self.path.display(), bytes = self.written, "recording stopped: {why}");
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocm_core::{Config, Protocol};

    fn header() -> Header {
        Header {
            protocol: Protocol::Relay,
            outputs: false,
            seed: [1; 32],
            config: Config::default(),
        }
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ocm-recorder-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_full_trace_stops_at_a_record_boundary_and_stays_readable() {
        let path = temp("limit");
        let options = RecordOptions {
            path: path.clone(),
            max_bytes: 400,
            outputs: false,
        };
        let mut recorder = Recorder::create(&options, &header()).unwrap();
        let from = "10.0.0.1:4000".parse().unwrap();
        let now = Instant::now();
        for _ in 0..10 {
            recorder.input(
                now,
                &Input::Datagram {
                    from,
                    data: b"\x01ahello",
                },
            );
        }
        assert!(!recorder.is_recording(), "stopped at the limit");
        drop(recorder);
        let trace = std::fs::read(&path).unwrap();
        assert!(trace.len() <= 400, "{} bytes", trace.len());
        let summary = ocm_core::record::replay(&trace, false).unwrap();
        assert!(summary.inputs > 0 && summary.inputs < 10, "{summary:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn an_existing_file_is_made_private() {
        let path = temp("mode");
        std::fs::write(&path, b"old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let options = RecordOptions {
                path: path.clone(),
                max_bytes: DEFAULT_MAX_BYTES,
                outputs: true,
            };
            drop(Recorder::create(&options, &header()).unwrap());
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let trace = std::fs::read(&path).unwrap();
            assert!(
                ocm_core::record::TraceReader::new(&trace)
                    .unwrap()
                    .header()
                    .outputs
            );
        }
        let _ = std::fs::remove_file(path);
    }
}
