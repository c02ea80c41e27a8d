//! What an operator adds to `ocm server`: `--metrics ADDR` (the endpoints of
//! [`ocm_metrics`]: `/metrics`, `/healthz`, `/readyz`) and `--log-format text|json`.

use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;

/// The operator's options of `ocm server`.
#[derive(Args, Debug, Clone)]
pub struct OpsArgs {
    /// Serve /metrics (Prometheus text format), /healthz and /readyz over HTTP on ADDR
    /// (port 0: any free port, printed as metrics= on the listening line) [default: off]
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Log lines on stderr as text, or as one JSON object per line
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event (colours on a terminal).
    Text,
    /// One JSON object per line: timestamp, level, target, and the event's fields.
    Json,
}

/// Sends the log to stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

/// Starts the endpoints for a bound server, when `--metrics` asks for them.
pub fn start_metrics(
    addr: Option<SocketAddr>,
    inspector: ocm_io::Inspector,
    tcp: Option<SocketAddr>,
    udp: SocketAddr,
) -> std::io::Result<Option<ocm_metrics::MetricsServer>> {
    let Some(addr) = addr else { return Ok(None) };
    let options = ocm_metrics::MetricsOptions::new(addr, tcp, udp);
    let server = ocm_metrics::MetricsServer::start(options, inspector)?;
    tracing::info!(addr = %server.addr(), "metrics on http://{}/metrics", server.addr());
    Ok(Some(server))
}
