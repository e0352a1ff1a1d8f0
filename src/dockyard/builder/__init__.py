"""The builder: runs one build (git fetch, `buildah bud`, `buildah push`) in a child process that
holds nothing of the registry's but the build's own short-lived push credential."""
