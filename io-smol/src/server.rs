//! [`Smol`]: smol as the runtime of the shared server shell, [`ocm_io::Shell<Smol>`].

use ocm_io::Task;

/// smol as an [`ocm_io::Runtime`]: tasks on its global executor.
#[derive(Debug)]
pub struct Smol;

impl ocm_io::Runtime for Smol {
    fn spawn(task: Task) {
        smol::spawn(task).detach();
    }
}
