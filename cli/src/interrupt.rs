//! Interrupts (Ctrl-C's SIGINT, a service manager's SIGTERM) during `send` and `outbox flush`:
//! the first stops the work between requests, a second ends the process at once.

use crate::Fatal;
use indicatif::ProgressBar;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Interrupts received so far.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Set by the first interrupt: the session sends nothing more ([`Session::with_cancel`]).
///
/// [`Session::with_cancel`]: freight::client::Session::with_cancel
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Exit status of work stopped by an interrupt (128 + SIGINT, as a shell reports it).
pub const INTERRUPTED_EXIT: u8 = 130;

/// True once the first interrupt came.
pub fn interrupted() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// From now on, the first interrupt sets [`STOP`] and says `notice` on standard error (above
/// the progress bar, if there is one); a second one exits with [`INTERRUPTED_EXIT`] at once (a
/// read of a silent standard input cannot be stopped otherwise).
pub fn stop_on_interrupt(notice: &'static str, bar: Option<ProgressBar>) -> Result<(), Fatal> {
    ctrlc::set_handler(move || {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(i32::from(INTERRUPTED_EXIT));
        }
        STOP.store(true, Ordering::SeqCst);
        let say = || say!("{notice}");
        match &bar {
            Some(bar) => bar.suspend(say),
            None => say(),
        }
    })
    .map_err(|e| Fatal(format!("cannot handle signals: {e}")))
}
