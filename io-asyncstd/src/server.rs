//! [`AsyncStd`]: async-std as the runtime of the shared server shell,
//! [`ocm_io::Shell<AsyncStd>`].

use async_std::task;
use ocm_io::Task;

/// async-std as an [`ocm_io::Runtime`]: tasks on its executor.
#[derive(Debug)]
pub struct AsyncStd;

impl ocm_io::Runtime for AsyncStd {
    fn spawn(task: Task) {
        task::spawn(task);
    }
}
