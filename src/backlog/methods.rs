//! The API both backlog streams share (`RunAll` and `RunAllFixed`), written
//! once as macros over the stream's `inner` engine and its pinned `engine()`
//! projection. Declared before the stream modules that expand them; the names
//! they use resolve where they are expanded.

/// The methods both backlog streams share, written once.
macro_rules! backlog_stream_methods {
    ($name:ident) => {
        /// Yields the outputs in the order the items came from the source,
        /// like Twisted's `DeferredList`, instead of as they finish.
        ///
        /// A finished item gives its permit back at once; its output waits in
        /// its slot until the items before it are yielded. At most
        /// [`limit`](Self::limit) items are between "started" and "yielded",
        /// so the reorder buffer is bounded too: a slow item holds up new
        /// work once `limit` items are started past it. Without an explicit
        #[doc = concat!("`limit`, the window is the semaphore's permit count when `", stringify!($name), "::in_order` is called")]
        /// (for the fixed variant: `N`).
        ///
        /// Call it before the stream is first polled.
        pub fn in_order(mut self) -> Self {
            self.inner.set_in_order();
            self
        }

        /// Caps this stream's share: at most `n` items in flight (plus, in
        /// order, finished ones waiting their turn) however many permits the
        /// semaphore has. Without it, the heap variant is bounded only by
        /// the semaphore and the fixed one by `N` (which also caps `n`).
        ///
        /// # Panics
        ///
        /// If `n` is 0.
        pub fn limit(mut self, n: usize) -> Self {
            self.inner.set_limit(n);
            self
        }

        /// A snapshot of how far the stream has got: a few field reads and
        /// the source's `size_hint`.
        pub fn progress(&self) -> Progress
        where
            St: Stream,
        {
            self.inner.progress()
        }

        /// The source, with the items not started yet.
        pub fn source(&self) -> &St {
            self.inner.source()
        }

        /// The source, pinned, with the items not started yet. Once the
        /// stream has ended (source drained, [`stop_on_err`](Self::stop_on_err)
        /// or `Err(Closed)`), exactly the items left in it did not run.
        pub fn source_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
            self.engine().source_mut()
        }
    };
}

macro_rules! backlog_stream_impls {
    ($name:ident [$($param:tt)*] [$($arg:tt)*]) => {
        impl<'a, St, F, Fut: IntoFuture, $($param)*> $name<'a, St, F, Fut, $($arg)*> {
            backlog_stream_methods!($name);
        }

        impl<'a, St, F, Fut, T, E, $($param)*> $name<'a, St, F, Fut, $($arg)*>
        where
            Fut: IntoFuture<Output = Result<T, E>>,
        {
            /// Stops pulling new items at the first `Ok(Err(_))` output and
            /// yields it (Twisted's `fireOnOneErrback`).
            ///
            /// The items already in flight **finish** and are yielded after
            /// it, then the stream ends; to abandon them instead, drop the
            /// stream after the `Err`, which drops them and gives their
            /// permits back. The items left in the
            /// [source](Self::source_mut) are the ones that never ran.
            ///
            /// Without it (the default, like `DeferredList`), errors are
            /// yielded like any output and the work goes on.
            pub fn stop_on_err(mut self) -> Self {
                self.inner.set_stop_if(Result::is_err);
                self
            }
        }

        impl<'a, I: Iterator, F, Fut: IntoFuture, $($param)*> $name<'a, IterStream<I>, F, Fut, $($arg)*> {
            /// The items of the source iterator that were not started. Once
            /// the stream has ended early (`stop_on_err` or `Err(Closed)`),
            /// these are exactly the items that did not run.
            pub fn remaining(self: Pin<&mut Self>) -> &mut I {
                self.source_mut().iter_mut()
            }
        }

        impl<'a, St, F, Fut, $($param)*> Stream for $name<'a, St, F, Fut, $($arg)*>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
        {
            type Item = Result<Fut::Output, AcquireError>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                self.engine().poll_next(cx)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.inner.size_hint()
            }
        }

        impl<'a, St, F, Fut, $($param)*> FusedStream for $name<'a, St, F, Fut, $($arg)*>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
        {
            fn is_terminated(&self) -> bool {
                self.inner.is_finished()
            }
        }

        impl<'a, St, F, Fut: IntoFuture, $($param)*> fmt::Debug for $name<'a, St, F, Fut, $($arg)*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.inner.fmt_fields(stringify!($name), f)
            }
        }
    };
}
