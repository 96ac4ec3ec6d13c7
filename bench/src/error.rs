//! The harness's errors.

use crate::model::ModelError;

/// Why a scenario could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster layer failed (a spec, a plan or a run).
    #[error("{scenario}: the cluster layer failed")]
    Cluster {
        /// The scenario.
        scenario: String,
        /// What failed.
        #[source]
        source: Box<cluster::Error>,
    },
    /// A provider call failed outside the cluster layer.
    #[error("{scenario}: a provider call failed")]
    Provider {
        /// The scenario.
        scenario: String,
        /// What failed.
        #[source]
        source: Box<provider_core::Error>,
    },
    /// The plan's DAG is not one the model can measure.
    #[error("{scenario}: the plan cannot be measured")]
    Model {
        /// The scenario.
        scenario: String,
        /// What is wrong with it.
        #[source]
        source: ModelError,
    },
    /// Local I/O (a state directory, a socket).
    #[error("{scenario}: {what}")]
    Io {
        /// The scenario.
        scenario: String,
        /// What was being done.
        what: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A run did something other than expected.
    #[error("{scenario}: {message}")]
    Unexpected {
        /// The scenario.
        scenario: String,
        /// What happened.
        message: String,
    },
}

/// The harness's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the scenario's name to errors of the layers below.
pub trait Context<T> {
    /// Names `scenario` in the error.
    fn during(self, scenario: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, cluster::Error> {
    fn during(self, scenario: &str) -> Result<T> {
        self.map_err(|source| Error::Cluster {
            scenario: scenario.to_string(),
            source: Box::new(source),
        })
    }
}

impl<T> Context<T> for std::result::Result<T, provider_core::Error> {
    fn during(self, scenario: &str) -> Result<T> {
        self.map_err(|source| Error::Provider {
            scenario: scenario.to_string(),
            source: Box::new(source),
        })
    }
}

impl<T> Context<T> for std::result::Result<T, ModelError> {
    fn during(self, scenario: &str) -> Result<T> {
        self.map_err(|source| Error::Model {
            scenario: scenario.to_string(),
            source,
        })
    }
}
