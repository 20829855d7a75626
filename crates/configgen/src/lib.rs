//! configgen: compiles one declarative homelab config into every config file
//! of the monitoring stack.
//!
//! config file -> [`model`] (typed, validated) -> [`plan`] (derived facts)
//! -> [`render`] (one renderer per format) -> a tree written atomically.

pub mod alerts;
pub mod apply;
pub mod diagnostic;
pub mod inhibitions;
pub mod load;
pub mod model;
pub mod plan;
pub mod referenced_files;
pub mod render;
pub mod runtime;
pub mod schema;
pub mod secret_files;
pub mod validate;
pub mod write;
