# Targets feeding each other through `target:` named contexts: `app` builds on the result of
# `base`, and `tests` copies from `app`. Asking for `tests` builds all three, once each.
# Building needs runc and busybox-static (`apt-get install runc busybox-static`); the
# `busybox` context reads `/bin`, outside the project: `bake --allow fs.read=/bin tests`.
target "base" {
  context  = "base"
  contexts = { busybox = "/bin" }
  args = {
    PACKAGES = "ca-certificates"
  }
}

target "app" {
  context = "app"
  contexts = {
    base = "target:base"
  }
  tags = ["acme/app:latest"]
}

target "tests" {
  context = "tests"
  contexts = {
    app = "target:app"
  }
  output = ["type=local,dest=out/test-results"]
}

group "default" {
  targets = ["tests"]
}
