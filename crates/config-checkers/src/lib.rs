//! Checkers for configgen's rendered files, used only by configgen's tests
//! (a dev-dependency, so the product crate holds the compiler alone):
//! an Alloy configuration parser, LogQL and TraceQL parsers, and a reader of
//! the queries in Grafana dashboards.

pub mod alloy_syntax;
mod cursor;
pub mod dashboard_queries;
pub mod logql;
pub mod traceql;
