//! A tokio runtime on threads of its own, so that servers started by tests and benchmarks
//! keep running whatever runtime (or none) the caller uses, and stop when dropped.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// A background runtime running one server future until [`Background::stop`] or drop.
pub struct Background {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts `worker_threads` threads named `name` and runs the future `make()` returns
    /// until stopped. `make` runs on the new runtime, so it may bind sockets and spawn tasks.
    pub fn spawn<F, Fut>(name: &str, worker_threads: usize, make: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("tokio runtime starts");
        let thread = std::thread::Builder::new()
            .name(format!("{name}-main"))
            .spawn(move || {
                rt.block_on(async move {
                    let server = make();
                    tokio::select! {
                        _ = server => {}
                        _ = rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task it still runs.
                rt.shutdown_background();
            })
            .expect("thread starts");
        Self {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stops the runtime and waits for its thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}
