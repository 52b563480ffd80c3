# A monorepo of seven services that share one base stage through a `target:` link. The base
# stands on an OS image that bake builds itself from Debian's static busybox
# (`apt-get install busybox-static runc`), so `bake` builds everything with no registry; it
# reads busybox from `/bin`, outside the project, so that is granted with `--allow`:
#   bake --root /tmp/bake --allow fs.read=/bin
# For two platforms, give the other architecture's busybox too (Debian's, unpacked) and run its
# steps under QEMU (`apt-get install qemu-user-static`):
#   PLATFORMS=linux/amd64,linux/arm64 BUSYBOX_ARM64_DIR=/tmp/arm64/bin bake --root /tmp/bake \
#     --allow fs.read=/bin,fs.read=/tmp/arm64/bin
# Point OS at another image to use it instead (`OS=docker-image://debian:12 bake`).
# `bake --print` needs nothing.
variable "OS" {
  default     = "target:os"
  description = "The OS base image (a target:, docker-image:// or oci-layout:// named context)"
}

variable "PLATFORMS" {
  default     = ""
  description = "Comma-separated platforms every image is built for (empty: the host's)"
}

variable "BUSYBOX_AMD64_DIR" {
  default     = "/bin"
  description = "The directory holding a statically linked amd64 `busybox` (Debian: busybox-static)"
}

variable "BUSYBOX_ARM64_DIR" {
  default     = "/bin"
  description = "The directory holding a statically linked arm64 `busybox` (Debian: busybox-static:arm64)"
}

variable "REGISTRY" {
  default     = "registry.example.com/acme"
  description = "Where images would be pushed"
}

variable "TAG" {
  default     = "dev"
  description = "Image tag for every service"
}

function "image" {
  params = [service, flavor]
  result = "${REGISTRY}/${service}:${TAG}-${flavor}"
}

group "default" {
  targets = ["services", "docs", "cli"]
}

group "services" {
  description = "Long-running services"
  targets     = ["api", "worker", "web", "migrations"]
}

# Every image is built for the same platforms; a `target:` link then joins each platform of a
# service to the same platform of what it links.
target "_platforms" {
  platforms = PLATFORMS == "" ? [] : split(",", PLATFORMS)
}

# The OS image, from busybox-static: `FROM scratch`, the platform's binary, and its applets
# installed.
target "os" {
  inherits = ["_platforms"]
  context  = "os"
  contexts = {
    busybox-amd64 = BUSYBOX_AMD64_DIR
    busybox-arm64 = BUSYBOX_ARM64_DIR
  }
}

# The shared base stage; every service starts `FROM base`.
target "base" {
  inherits = ["_platforms"]
  context  = "base"
  contexts = { os = OS }
}

# Shared by every service: the platforms, the link to the base, build args and labels.
target "_common" {
  inherits = ["_platforms"]
  contexts = {
    base = "target:base"
  }
  args = {
    GO_VERSION = "1.22"
  }
  labels = {
    "org.opencontainers.image.source" = "https://example.com/acme/monorepo"
  }
}

target "api" {
  inherits = ["_common"]
  name     = "api-${flavor}"
  matrix = {
    flavor = ["slim", "full"]
  }
  context = "services/api"
  args    = { FLAVOR = flavor }
  tags    = [image("api", flavor)]
  output  = ["type=oci,dest=out/api-${flavor}.tar"]
}

target "worker" {
  inherits = ["_common"]
  context  = "services/worker"
  tags     = [image("worker", "full")]
  # A Docker image archive holds one platform, so several platforms go to an OCI archive.
  output = [
    length(split(",", PLATFORMS)) > 1 ? "type=oci,dest=out/worker.tar" : "type=docker,dest=out/worker.tar"
  ]
}

target "web" {
  inherits = ["_common"]
  context  = "services/web"
  args = {
    NODE_ENV = "production"
  }
  tags   = [image("web", "full")]
  output = [{ type = "local", dest = "out/web" }]
}

target "migrations" {
  inherits = ["_common"]
  context  = "services/migrations"
  target   = "migrate"
  output   = ["type=tar,dest=out/migrations.tar"]
}

target "docs" {
  inherits = ["_common"]
  context  = "services/docs"
  output   = ["type=local,dest=out/docs"]
}

target "cli" {
  inherits   = ["_common"]
  context    = "services/cli"
  dockerfile = "cli.Dockerfile"
  output     = ["type=oci,dest=out/cli,tar=false"]
}
