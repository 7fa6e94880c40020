//! Release versions that change which rules apply: the K3s (= Kubernetes) version, the Traefik
//! chart version and the Calico version.

use std::fmt;

use serde::Serialize;

/// A `major.minor.patch` version. Missing parts are 0; pre-release and build suffixes
/// (`-rc1`, `+k3s1`, `+up27.0.2`) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The first number (`1` in `v1.35.2+k3s1`).
    pub major: u32,
    /// The second number (`35`).
    pub minor: u32,
    /// The third number (`2`).
    pub patch: u32,
}

impl Version {
    /// The version `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parses `v1.21.4+k3s1`, `1.28`, `27.0.201+up27.0.2`, `v3.23.1`. `None` if it is not a version.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let core = text.split(['+', '-']).next().unwrap_or("");
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version::new(major, minor, patch))
    }

    /// Whether `self` is at least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Finds a chart version in a Helm chart reference: a `…/traefik-27.0.201+up27.0.2.tgz` URL
/// (as K3s writes into its bundled HelmChart) or a bare version.
pub fn chart_version_from_reference(reference: &str, chart_name: &str) -> Option<Version> {
    let file = reference.rsplit('/').next().unwrap_or(reference);
    let file = file.strip_suffix(".tgz").unwrap_or(file);
    let rest = file
        .strip_prefix(chart_name)
        .and_then(|r| r.strip_prefix('-'))
        .unwrap_or(file);
    Version::parse(rest)
}

/// Finds a version in a container image reference such as `docker.io/calico/node:v3.22.0`.
pub fn image_tag_version(image: &str) -> Option<Version> {
    let (_, tag) = image.rsplit_once(':')?;
    if tag.contains('/') {
        return None;
    }
    Version::parse(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_strings() {
        let table = [
            ("v1.21.4+k3s1", Some(Version::new(1, 21, 4))),
            ("1.28", Some(Version::new(1, 28, 0))),
            ("v1.30.2-rc1+k3s1", Some(Version::new(1, 30, 2))),
            ("27.0.201+up27.0.2", Some(Version::new(27, 0, 201))),
            ("latest", None),
            ("1.2.3.4", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(Version::parse(text), want, "{text}");
        }
    }

    #[test]
    fn chart_versions_from_k3s_urls() {
        assert_eq!(
            chart_version_from_reference(
                "https://%{KUBERNETES_API}%/static/charts/traefik-9.18.2.tgz",
                "traefik"
            ),
            Some(Version::new(9, 18, 2))
        );
        assert_eq!(
            chart_version_from_reference(
                "https://%{KUBERNETES_API}%/static/charts/traefik-27.0.201+up27.0.2.tgz",
                "traefik"
            ),
            Some(Version::new(27, 0, 201))
        );
        assert_eq!(
            chart_version_from_reference("traefik/traefik", "traefik"),
            None
        );
        assert_eq!(
            image_tag_version("docker.io/calico/node:v3.22.0"),
            Some(Version::new(3, 22, 0))
        );
        assert_eq!(image_tag_version("registry:5000/calico/node"), None);
    }
}
