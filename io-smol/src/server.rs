//! [`Server`]: the shared server with its TCP tasks on smol's executor.

use ocm_io::tcp::Task;
use smol::future::Future;

/// smol as an [`ocm_io::Runtime`]: tasks on its global executor.
#[derive(Debug)]
pub struct Smol;

impl ocm_io::Runtime for Smol {
    fn spawn(task: Task) {
        smol::spawn(task).detach();
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

/// The ocm server on smol: bind, then `run` or `run_blocking` (see [`ocm_io::Server`]).
pub type Server = ocm_io::Server<Smol>;
