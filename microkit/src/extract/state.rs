use http::request::Parts;

use super::FromRequestParts;

/// The router's state, or a part of it (see [`FromRef`]).
///
/// ```
/// use microkit::{router::get, extract::State, Router};
///
/// #[derive(Clone)]
/// struct AppState { greeting: &'static str }
///
/// async fn hello(State(state): State<AppState>) -> &'static str {
///     state.greeting
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(hello))
///     .with_state(AppState { greeting: "hi" });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

/// Takes a part out of the router's state, so handlers can ask for only what they use.
pub trait FromRef<S> {
    /// Clones the part out of the state.
    fn from_ref(state: &S) -> Self;
}

impl<T: Clone> FromRef<T> for T {
    fn from_ref(state: &T) -> Self {
        state.clone()
    }
}

impl<S, T> FromRequestParts<S> for State<T>
where
    S: Send + Sync,
    T: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(State(T::from_ref(state)))
    }
}
