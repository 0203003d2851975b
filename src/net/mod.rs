//! Network clients stack itself speaks: HTTP/1.1 (and the WebSocket upgrade) for `http` checks,
//! over the hyper + rustls stack kube and bollard already build.

pub mod http;
