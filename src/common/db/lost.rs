//! Whether the connection in use on this thread was found dead (the server closed it, or a
//! command could not be sent): the pool then discards it when it comes back (`has_broken`),
//! instead of asking every connection `SELECT 1` when it is taken out. A leaf module, so that
//! the error mapping can note a loss without importing the pool.

use std::cell::Cell;

thread_local! {
    static LOST: Cell<bool> = const { Cell::new(false) };
}

/// Notes that the connection used on this thread is dead.
pub fn note() {
    LOST.with(|lost| lost.set(true));
}

/// Whether a loss was noted since the last call; clears the note.
pub fn take() -> bool {
    LOST.with(|lost| lost.replace(false))
}
