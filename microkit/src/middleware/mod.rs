//! microkit's own tower layers. Any tower or tower-http layer fits a
//! [`Router`](crate::Router) too, through [`Router::layer`](crate::Router::layer) and
//! [`Router::route_layer`](crate::Router::route_layer).

mod request_id;

pub use self::request_id::{
    current_request_id, RequestId, RequestIdLayer, RequestIdService, X_REQUEST_ID,
};
pub(crate) use self::request_id::{with_request_id, X_REQUEST_ID_NAME};
