//! Handlers: async functions whose arguments are extractors and whose output is a response.
//!
//! Any `async fn` with up to 12 arguments is a [`Handler`] when every argument but the last
//! implements [`FromRequestParts`], the last implements [`FromRequest`] (which every
//! `FromRequestParts` type also does), and the output implements [`IntoResponse`]. The body
//! extractor, if any, must therefore be the last argument, and there can be only one.
//!
//! Every argument also implements [`OperationInput`] and the output [`OperationOutput`], so
//! that each route documents itself in the OpenAPI document ([`crate::openapi`]): the types
//! inside `Json<T>`, `Path<T>` and `Query<T>` derive `schemars::JsonSchema`.
//!
//! ```
//! use microkit::{extract::{Path, Query}, router::get, Json, Router};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, schemars::JsonSchema)]
//! struct Page { offset: Option<u64> }
//!
//! async fn list(Path(uid): Path<u64>, Query(page): Query<Page>) -> Json<Vec<u64>> {
//!     Json(vec![uid, page.offset.unwrap_or(0)])
//! }
//!
//! let app: Router = Router::new().route("/user/{uid}/items", get(list));
//! ```

use std::future::Future;
use std::pin::Pin;

use crate::extract::{FromRequest, FromRequestParts};
use crate::openapi::{Operation, OperationInput, OperationOutput};
use crate::response::IntoResponse;
use crate::{Request, Response};

/// The future a handler returns: boxed once, as the router stores handlers of many types.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// An async function that answers a request. Implemented for async functions and closures
/// whose arguments are extractors; `T` records those arguments' types.
#[diagnostic::on_unimplemented(
    note = "a handler is an `async fn` whose arguments are extractors, with at most one body \
            extractor (such as `Json<T>`) and it in last place, returning a type that implements \
            `IntoResponse`",
    note = "every argument and output documents itself for OpenAPI (`OperationInput`, \
            `OperationOutput`): the `T` of a `Json<T>`, `Path<T>` or `Query<T>` derives \
            `schemars::JsonSchema` beside serde's traits"
)]
pub trait Handler<T, S>: Clone + Send + Sync + Sized + 'static {
    /// Answers `request`, with `state` available to the extractors.
    fn call(self, request: Request, state: S) -> HandlerFuture;

    /// Describes the handler's operation from its argument and output types: what each
    /// extractor reads ([`OperationInput`]) and what the output answers ([`OperationOutput`]).
    /// The router calls it when it builds the OpenAPI document.
    fn describe(operation: &mut Operation) {
        let _ = operation;
    }
}

impl<F, Fut, Res, S> Handler<((),), S> for F
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send,
    Res: IntoResponse + OperationOutput,
{
    fn call(self, _: Request, _: S) -> HandlerFuture {
        Box::pin(async move { self().await.into_response() })
    }

    fn describe(operation: &mut Operation) {
        Res::describe_output(operation);
    }
}

/// A handler of one argument: how the argument is taken depends on its kind, a parts
/// extractor or one that takes the whole request (see `only_argument` below), so that neither
/// kind keeps the request in the handler's future twice.
impl<F, Fut, S, Res, M, T1> Handler<(M, T1), S> for F
where
    F: FnOnce(T1) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send,
    S: Send + Sync + 'static,
    Res: IntoResponse + OperationOutput,
    T1: FromRequest<S, M> + OperationInput + Send,
    M: only_argument::Extraction<S, T1>,
{
    fn call(self, request: Request, state: S) -> HandlerFuture {
        M::answer(self, request, state)
    }

    fn describe(operation: &mut Operation) {
        T1::describe_input(operation);
        Res::describe_output(operation);
    }
}

/// The one-argument handler's two ways, chosen by the argument's [`FromRequest`] marker.
/// Public in a private module, as the markers: it appears in a public impl's bounds, and no
/// user names it.
#[allow(unreachable_pub)]
mod only_argument {
    use std::future::Future;

    use super::HandlerFuture;
    use crate::extract::private::{ViaParts, ViaRequest};
    use crate::extract::{FromRequest, FromRequestParts};
    use crate::response::IntoResponse;
    use crate::Request;

    /// Takes a handler's only argument, of type `T`, from the request and calls the handler.
    pub trait Extraction<S, T> {
        /// The handler's future.
        fn answer<F, Fut, Res>(handler: F, request: Request, state: S) -> HandlerFuture
        where
            F: FnOnce(T) -> Fut + Send + 'static,
            Fut: Future<Output = Res> + Send,
            Res: IntoResponse;
    }

    /// An argument read from the parts (`Path<T>`, `Query<T>`, ...): the request is split and
    /// its body dropped before the future is made, which then holds the parts alone. (A future
    /// keeps what it captures for its whole life: one that took the request would hold it
    /// beside the extraction's future, which takes it over.)
    impl<S, T> Extraction<S, T> for ViaParts
    where
        S: Send + Sync + 'static,
        T: FromRequestParts<S> + Send,
    {
        fn answer<F, Fut, Res>(handler: F, request: Request, state: S) -> HandlerFuture
        where
            F: FnOnce(T) -> Fut + Send + 'static,
            Fut: Future<Output = Res> + Send,
            Res: IntoResponse,
        {
            let (mut parts, _) = request.into_parts();
            Box::pin(async move {
                let argument = match T::from_request_parts(&mut parts, &state).await {
                    Ok(value) => value,
                    Err(rejection) => return rejection.into_response(),
                };
                handler(argument).await.into_response()
            })
        }
    }

    /// An argument that takes the whole request (`Json<T>`, `Bytes`, `Request`, ...): the
    /// request goes to it as it came, not split and put back together.
    impl<S, T> Extraction<S, T> for ViaRequest
    where
        S: Send + Sync + 'static,
        T: FromRequest<S> + Send,
    {
        fn answer<F, Fut, Res>(handler: F, request: Request, state: S) -> HandlerFuture
        where
            F: FnOnce(T) -> Fut + Send + 'static,
            Fut: Future<Output = Res> + Send,
            Res: IntoResponse,
        {
            Box::pin(async move {
                let argument = match T::from_request(request, &state).await {
                    Ok(value) => value,
                    Err(rejection) => return rejection.into_response(),
                };
                handler(argument).await.into_response()
            })
        }
    }
}

macro_rules! impl_handler {
    ([$($part:ident),*], $last:ident) => {
        #[allow(non_snake_case)]
        impl<F, Fut, S, Res, M, $($part,)* $last> Handler<(M, $($part,)* $last,), S> for F
        where
            F: FnOnce($($part,)* $last,) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Res> + Send,
            S: Send + Sync + 'static,
            Res: IntoResponse + OperationOutput,
            $($part: FromRequestParts<S> + OperationInput + Send,)*
            $last: FromRequest<S, M> + OperationInput + Send,
        {
            fn call(self, request: Request, state: S) -> HandlerFuture {
                // Split before the future is made: a future keeps what it captures beside its
                // own variables, so splitting inside would hold the request twice.
                #[allow(unused_mut)]
                let (mut parts, body) = request.into_parts();
                Box::pin(async move {
                    $(
                        let $part = match $part::from_request_parts(&mut parts, &state).await {
                            Ok(value) => value,
                            Err(rejection) => return rejection.into_response(),
                        };
                    )*
                    let request = Request::from_parts(parts, body);
                    let $last = match $last::from_request(request, &state).await {
                        Ok(value) => value,
                        Err(rejection) => return rejection.into_response(),
                    };
                    self($($part,)* $last,).await.into_response()
                })
            }

            fn describe(operation: &mut Operation) {
                $($part::describe_input(operation);)*
                $last::describe_input(operation);
                Res::describe_output(operation);
            }
        }
    };
}

impl_handler!([T1], T2);
impl_handler!([T1, T2], T3);
impl_handler!([T1, T2, T3], T4);
impl_handler!([T1, T2, T3, T4], T5);
impl_handler!([T1, T2, T3, T4, T5], T6);
impl_handler!([T1, T2, T3, T4, T5, T6], T7);
impl_handler!([T1, T2, T3, T4, T5, T6, T7], T8);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8], T9);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9], T10);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10], T11);
impl_handler!([T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11], T12);
