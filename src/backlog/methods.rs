//! The API every backlog stream shares (`RunAll`, `RunAllFixed`, `RunWith`),
//! written once as macros over the stream's `inner` engine, its pinned
//! `engine()` projection and its `default_window()`. Declared before the
//! stream modules that expand them; the names they use resolve where they
//! are expanded.

/// The methods every backlog stream shares, written once.
macro_rules! backlog_stream_methods {
    ($name:ident, $window_doc:literal) => {
        /// Yields the outputs in the order the items came from the source,
        /// like Twisted's `DeferredList`, instead of as they finish.
        ///
        /// A finished item gives its permit back at once; its output waits in
        /// its slot until the items before it are yielded. At most
        /// [`limit`](Self::limit) items are between "started" and "yielded",
        /// so the reorder buffer is bounded too: a slow item holds up new
        /// work once `limit` items are started past it.
        #[doc = $window_doc]
        ///
        /// Call it before the stream is first polled.
        pub fn in_order(mut self) -> Self {
            let window = self.default_window();
            self.inner.set_in_order(window);
            self
        }

        /// Caps this stream's share: at most `n` items in flight (plus, in
        /// order, finished ones waiting their turn) however many the gate
        /// would admit. Without it, the heap variants are bounded only by
        /// the gate (the semaphore) and the fixed one by `N` (which also
        /// caps `n`).
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
        /// or an error from the gate), exactly the items left in it did not
        /// run.
        pub fn source_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
            self.engine().source_mut()
        }
    };
}

/// Everything a backlog stream implements. `[pre params] [pre args]` come
/// before `St, F, Fut` in the type's generics, `[post params] [post args]`
/// after; `$gate` is its gate type, `[$($bound)*]` what the gate needs.
macro_rules! backlog_stream_impls {
    (
        $name:ident [$($pre:tt)*] [$($pre_arg:tt)*] [$($post:tt)*] [$($post_arg:tt)*],
        gate $gate:ty, where [$($bound:tt)*], window $window_doc:literal
    ) => {
        impl<$($pre)* St, F, Fut: IntoFuture, $($post)*> $name<$($pre_arg)* St, F, Fut, $($post_arg)*>
        where
            $($bound)*
        {
            backlog_stream_methods!($name, $window_doc);
        }

        impl<$($pre)* St, F, Fut, T, E, $($post)*> $name<$($pre_arg)* St, F, Fut, $($post_arg)*>
        where
            Fut: IntoFuture<Output = Result<T, E>>,
            $($bound)*
        {
            /// Stops admitting new items at the first `Ok(Err(_))` output and
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

        impl<$($pre)* St, F, Fut, $($post)*> Stream for $name<$($pre_arg)* St, F, Fut, $($post_arg)*>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
            $($bound)*
        {
            type Item = Result<Fut::Output, <$gate as Gate<St::Item, Fut::Output>>::Error>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                self.engine().poll_next(cx)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.inner.size_hint()
            }
        }

        impl<$($pre)* St, F, Fut, $($post)*> FusedStream for $name<$($pre_arg)* St, F, Fut, $($post_arg)*>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
            $($bound)*
        {
            fn is_terminated(&self) -> bool {
                self.inner.is_finished()
            }
        }

        impl<$($pre)* St, F, Fut: IntoFuture, $($post)*> fmt::Debug for $name<$($pre_arg)* St, F, Fut, $($post_arg)*>
        where
            $($bound)*
        {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.inner.fmt_fields(stringify!($name), f)
            }
        }
    };
}

/// `remaining()`, for the streams whose source may be an [`IterStream`].
macro_rules! backlog_stream_remaining {
    ($name:ident [$($pre:tt)*] [$($pre_arg:tt)*] [$($post:tt)*] [$($post_arg:tt)*]) => {
        impl<$($pre)* I: Iterator, F, Fut: IntoFuture, $($post)*> $name<$($pre_arg)* IterStream<I>, F, Fut, $($post_arg)*> {
            /// The items of the source iterator that were not started. Once
            /// the stream has ended early (`stop_on_err` or an error from the
            /// gate), these are exactly the items that did not run.
            pub fn remaining(self: Pin<&mut Self>) -> &mut I {
                self.source_mut().iter_mut()
            }
        }

    };
}
