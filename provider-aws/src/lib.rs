//! Plinth provider for aws: not implemented yet (see the open issue). The crate exists
//! so the workspace has its final shape; it exports nothing.
