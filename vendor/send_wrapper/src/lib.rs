//! A value that may be moved between threads but used only on the thread
//! that made it (send_wrapper 0.6's API, as Leptos uses it).
//!
//! On `wasm32` without the `atomics` feature a program has exactly one
//! thread, so every access is on the owner's thread and nothing is checked.
//! Everywhere else the owner's `ThreadId` is kept and a use from another
//! thread panics, as with the original crate.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

#[cfg(not(all(target_family = "wasm", not(target_feature = "atomics"))))]
mod owner {
    use std::thread::{self, ThreadId};

    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct Owner(ThreadId);

    impl Owner {
        pub fn here() -> Self {
            Owner(thread::current().id())
        }
        pub fn is_here(self) -> bool {
            self == Self::here()
        }
    }
}

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
mod owner {
    /// One thread: the owner is always here.
    #[derive(Clone, Copy)]
    pub struct Owner;

    impl Owner {
        pub fn here() -> Self {
            Owner
        }
        pub fn is_here(self) -> bool {
            true
        }
    }
}

use owner::Owner;

/// Wraps a value that is not `Send` so it can be moved across threads; it
/// may be read, taken or dropped only on the thread that wrapped it.
pub struct SendWrapper<T> {
    data: ManuallyDrop<T>,
    owner: Owner,
}

// SAFETY: the value is only ever reached through `check`, which panics off
// the owner's thread (and on single-threaded wasm there is no other thread);
// `Drop` leaks rather than drop it elsewhere.
unsafe impl<T> Send for SendWrapper<T> {}
// SAFETY: as above: shared access also goes through `check`.
unsafe impl<T> Sync for SendWrapper<T> {}

impl<T> SendWrapper<T> {
    pub fn new(data: T) -> Self {
        SendWrapper {
            data: ManuallyDrop::new(data),
            owner: Owner::here(),
        }
    }

    /// Whether this thread may use the value.
    pub fn valid(&self) -> bool {
        self.owner.is_here()
    }

    /// The value, out of its wrapper. Panics off the owner's thread.
    #[track_caller]
    pub fn take(self) -> T {
        self.check();
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `data` is moved out only here.
        unsafe { ManuallyDrop::take(&mut this.data) }
    }

    #[track_caller]
    fn check(&self) {
        if !self.valid() {
            panic!("SendWrapper used off the thread that made it");
        }
    }
}

impl<T> Deref for SendWrapper<T> {
    type Target = T;
    #[track_caller]
    fn deref(&self) -> &T {
        self.check();
        &self.data
    }
}

impl<T> DerefMut for SendWrapper<T> {
    #[track_caller]
    fn deref_mut(&mut self) -> &mut T {
        self.check();
        &mut self.data
    }
}

impl<T> Drop for SendWrapper<T> {
    fn drop(&mut self) {
        // Off the owner's thread a value that needs dropping is leaked:
        // dropping it there would be unsound, and panicking in drop aborts.
        if !std::mem::needs_drop::<T>() || self.valid() {
            // SAFETY: `data` is dropped once, here, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.data) }
        }
    }
}

impl<T: Clone> Clone for SendWrapper<T> {
    #[track_caller]
    fn clone(&self) -> Self {
        Self::new(T::clone(self))
    }
}

impl<T: fmt::Debug> fmt::Debug for SendWrapper<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SendWrapper").field(&**self).finish()
    }
}

#[cfg(feature = "futures")]
mod futures {
    use super::SendWrapper;
    use futures_core::Stream;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    impl<F: Future> Future for SendWrapper<F> {
        type Output = F::Output;
        #[track_caller]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.check();
            // SAFETY: the wrapper owns the future inline and never moves it
            // out while pinned (`take` consumes an unpinned wrapper).
            unsafe { self.map_unchecked_mut(|w| &mut *w.data) }.poll(cx)
        }
    }

    impl<S: Stream> Stream for SendWrapper<S> {
        type Item = S::Item;
        #[track_caller]
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
            self.check();
            // SAFETY: as for `Future` above.
            unsafe { self.map_unchecked_mut(|w| &mut *w.data) }.poll_next(cx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SendWrapper;
    use std::rc::Rc;

    #[test]
    fn same_thread_reads_takes_and_drops() {
        let w = SendWrapper::new(Rc::new(5));
        assert!(w.valid());
        assert_eq!(**w, 5);
        let c = w.clone();
        assert_eq!(*c.take(), 5);
    }

    #[test]
    fn another_thread_may_not_read() {
        let w = SendWrapper::new(Rc::new(5));
        let r = std::thread::spawn(move || {
            assert!(!w.valid());
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| **w));
            (read.is_err(), w)
        })
        .join();
        let (refused, w) = r.expect("thread ran");
        assert!(refused);
        assert_eq!(**w, 5);
    }
}
