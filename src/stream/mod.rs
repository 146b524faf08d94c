//! The activity stream: every accepted batch of actions and every rolling
//! summary, as the hosted connector's SSE frames (`payload`), fanned out per
//! product to subscribers (`hub`) and pushed to a product's `forward_url`
//! (`forward`). Knows nothing of HTTP servers: the edge turns a
//! [`Subscription`] into `text/event-stream`.

pub mod forward;
pub mod hub;
pub mod payload;

pub use forward::{Forwarders, check_forward_url};
pub use hub::{
    Batch, BatchSubscription, Chunk, Frame, Hub, Item, SubscribeError, Subscription, deflate_block,
};
pub use payload::{actions_payloads, summary_payload};
