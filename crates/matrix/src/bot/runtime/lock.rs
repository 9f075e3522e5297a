//! Std mutexes whose data stays usable after a panic elsewhere.

/// Locks a std mutex, ignoring poisoning (the data stays usable).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
