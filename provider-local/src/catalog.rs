//! The image and flavor catalog: what `InstanceSpec::image` and `::flavor` may name.

use serde::{Deserialize, Serialize};

/// The port the `http` image answers on.
pub const HTTP_IMAGE_PORT: u16 = 8080;

/// What an instance's process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Image {
    /// A built-in HTTP service on port 8080 answering every request with
    /// `instance=<id> az=<az> name=<name>` (so an LB in front shows round robin).
    Http,
    /// Runs the user data as a `sh` script with `PLINTH_INSTANCE_ID`, `PLINTH_ADDRESS`,
    /// `PLINTH_AZ`, `PLINTH_VOLUMES` and `PLINTH_VOLUMES_DIR` set; the instance keeps
    /// running after the script ends, as a VM does after cloud-init.
    Shell,
}

impl Image {
    /// Every image, for messages.
    pub const ALL: &'static [(&'static str, Image)] =
        &[("http", Image::Http), ("shell", Image::Shell)];

    /// The image named `name`.
    pub fn by_name(name: &str) -> Option<Image> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
    }
}

/// A flavor: recorded on the instance (processes are not limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// Name used in specs.
    pub name: &'static str,
    /// Nominal CPUs.
    pub vcpus: u32,
    /// Nominal memory in MiB.
    pub memory_mib: u32,
}

/// The flavor catalog.
pub const FLAVORS: &[Flavor] = &[
    Flavor {
        name: "small",
        vcpus: 1,
        memory_mib: 512,
    },
    Flavor {
        name: "medium",
        vcpus: 2,
        memory_mib: 2048,
    },
    Flavor {
        name: "large",
        vcpus: 4,
        memory_mib: 8192,
    },
];

/// The flavor named `name`.
pub fn flavor(name: &str) -> Option<&'static Flavor> {
    FLAVORS.iter().find(|f| f.name == name)
}

/// Image names, comma-separated, for error messages.
pub fn image_names() -> String {
    Image::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Flavor names, comma-separated, for error messages.
pub fn flavor_names() -> String {
    FLAVORS
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}
