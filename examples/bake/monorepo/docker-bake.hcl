# A monorepo of seven services that share one base stage through a `target:` link. The base
# stands on an OS image that bake builds itself from Debian's static busybox
# (`apt-get install busybox-static runc`), so `bake` builds everything with no registry:
#   bake --root /tmp/bake
# Point OS at another image to use it instead (`OS=docker-image://debian:12 bake`).
# `bake --print` needs nothing.
variable "OS" {
  default     = "target:os"
  description = "The OS base image (a target:, docker-image:// or oci-layout:// named context)"
}

variable "BUSYBOX_DIR" {
  default     = "/bin"
  description = "The directory holding a statically linked `busybox` (Debian: busybox-static)"
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

# The OS image, from busybox-static: `FROM scratch`, the binary, and its applets installed.
target "os" {
  context  = "os"
  contexts = { busybox = BUSYBOX_DIR }
}

# The shared base stage; every service starts `FROM base`.
target "base" {
  context  = "base"
  contexts = { os = OS }
}

# Shared by every service: the link to the base, build args and labels.
target "_common" {
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
  output   = ["type=docker,dest=out/worker.tar"]
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
