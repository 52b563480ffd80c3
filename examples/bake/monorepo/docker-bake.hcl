# A monorepo of six services that share one base stage. Run from this directory:
#   bake --print            # resolve everything
#   bake --print api-amd64  # one matrix cell
variable "REGISTRY" {
  default     = "registry.example.com/acme"
  description = "Where images are pushed"
}

variable "TAG" {
  default     = "dev"
  description = "Image tag for every service"
}

variable "PLATFORMS" {
  type        = list(string)
  default     = ["amd64", "arm64"]
  description = "CPU architectures to build the services for"
}

function "image" {
  params = [service, arch]
  result = "${REGISTRY}/${service}:${TAG}-${arch}"
}

group "default" {
  targets = ["services", "docs", "cli"]
}

group "services" {
  description = "Long-running services"
  targets     = ["api", "worker", "web", "migrations"]
}

# Shared by every service: build args, labels and the base stage the Dockerfiles start from.
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

target "base" {
  context    = "base"
  dockerfile = "Dockerfile"
}

target "api" {
  inherits = ["_common"]
  name     = "api-${arch}"
  matrix = {
    arch = PLATFORMS
  }
  context   = "services/api"
  platforms = ["linux/${arch}"]
  tags      = [image("api", arch)]
  output    = ["type=oci,dest=out/api-${arch}.tar"]
}

target "worker" {
  inherits = ["_common"]
  context  = "services/worker"
  tags     = [image("worker", "amd64")]
  output   = ["type=docker,dest=out/worker.tar"]
}

target "web" {
  inherits = ["_common"]
  context  = "services/web"
  args = {
    NODE_ENV = "production"
  }
  tags   = [image("web", "amd64")]
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
