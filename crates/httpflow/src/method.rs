//! The `http_request_method` label.

/// Maps a method as sent to the OpenTelemetry `http.request.method` value:
/// one of the nine methods of RFC 9110 / RFC 5789, matched exactly (methods
/// are case-sensitive), else `"_OTHER"`. Bounds the label's cardinality.
pub fn normalize_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_method;

    #[test]
    fn known_methods_pass_through_exactly() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ] {
            assert_eq!(normalize_method(m), m);
        }
    }

    #[test]
    fn unknown_or_miscased_methods_are_other() {
        for m in ["get", "PROPFIND", "MKCOL", "", "GETX", "QUERY"] {
            assert_eq!(normalize_method(m), "_OTHER", "{m}");
        }
    }
}
