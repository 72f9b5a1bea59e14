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

/// A handler whose only argument takes the whole request: the request goes to it as it came,
/// not split into its parts and put back together (each a move of the request, kept in the
/// handler's future).
impl<F, Fut, S, Res, M, T1> Handler<(M, T1), S> for F
where
    F: FnOnce(T1) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send,
    S: Send + Sync + 'static,
    Res: IntoResponse + OperationOutput,
    T1: FromRequest<S, M> + OperationInput + Send,
{
    fn call(self, request: Request, state: S) -> HandlerFuture {
        Box::pin(async move {
            let argument = match T1::from_request(request, &state).await {
                Ok(value) => value,
                Err(rejection) => return rejection.into_response(),
            };
            self(argument).await.into_response()
        })
    }

    fn describe(operation: &mut Operation) {
        T1::describe_input(operation);
        Res::describe_output(operation);
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
