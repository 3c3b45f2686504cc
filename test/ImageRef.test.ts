// ImageRef: which sources we accept, and the names they get.
import { test } from "uvu"
import * as assert from "uvu/assert"
import { parseSource } from "../packages/core/src/ImageRef.ts"

const ok = (ref: string) => {
  const r = parseSource(ref)
  if ("_tag" in r) throw new Error(`${ref}: ${r.message}`)
  return r
}

test("docker:// references keep their name; the default name is the short one", () => {
  assert.equal([ok("docker://redis:alpine").transport, ok("docker://redis:alpine").defaultName], ["docker", "redis:alpine"])
  assert.is(ok("docker://docker.io/library/redis:alpine").defaultName, "redis:alpine")
  assert.is(ok("docker://registry.fedoraproject.org/f27/etcd").defaultName, "f27/etcd")
  assert.is(ok("docker://localhost:5000/busybox").defaultName, "busybox")
})

test("a bare name is taken as docker://", () => {
  assert.is(ok("redis:alpine").reference, "docker://redis:alpine")
})

test("oci:, oci-archive:, docker-archive:, dir: are sources too", () => {
  assert.is(ok("oci:/tmp/layout:redis").defaultName, "layout:redis")
  assert.is(ok("oci-archive:/tmp/x.tar").transport, "oci-archive")
  assert.is(ok("docker-archive:/tmp/x.tar").transport, "docker-archive")
  assert.is(ok("dir:/tmp/image").defaultName, "image")
})

test("an unknown transport is UnknownTransport naming it", () => {
  const r = parseSource("ftp://example/x")
  assert.ok("_tag" in r && r._tag === "UnknownTransport")
  assert.match((r as Error).message, /unknown transport 'ftp'/)
  assert.match((r as Error).message, /docker:\/\//)
})

test("malformed references are InvalidInput with a fix", () => {
  for (const bad of ["docker:redis", "docker://", "docker://UPPER/x", "oci:", "!!!"]) {
    const r = parseSource(bad)
    assert.ok("_tag" in r, bad)
    assert.match((r as Error).message, /write it like|not/, bad)
  }
})

test.run()
