// OstreeRefs: the old ostree transport's branch names, byte for byte.
import { test } from "uvu"
import * as assert from "uvu/assert"
import { blobRef, checkImageName, decodeName, encodeName, imageRef, isBlobRef, withTag } from "../packages/core/src/OstreeRefs.ts"
import { parseGVariantString } from "../packages/core/src/internal/gvariant.ts"

test("a name without a tag gets :latest, as given (no docker.io normalisation)", () => {
  assert.is(withTag("redis"), "redis:latest")
  assert.is(withTag("redis:alpine"), "redis:alpine")
  assert.is(withTag("localhost:5000/redis"), "localhost:5000/redis:latest")
  assert.is(withTag("docker.io/library/redis"), "docker.io/library/redis:latest")
})

test("the seed's ref: ostree:redis@REPO is ociimage/redis_3Alatest", () => {
  assert.is(imageRef("redis"), "ociimage/redis_3Alatest")
})

test("bytes outside [A-Za-z0-9.-] become _%02X, upper-case hex", () => {
  assert.is(encodeName("a/b:c_d@e.f-g"), "a_2Fb_3Ac_5Fd_40e.f-g")
  assert.is(encodeName("é"), "_C3_A9")
  assert.is(encodeName(" "), "_20")
})

test("decodeName inverts encodeName", () => {
  for (const n of ["redis:latest", "quay.io/org/x_y:1.0", "naïve:tag", "a__b"]) assert.is(decodeName(encodeName(n)), n)
})

test("blob refs carry the bare hex digest", () => {
  const d = `sha256:${"ab".repeat(32)}`
  assert.is(blobRef(d), `ociimage/${"ab".repeat(32)}`)
  assert.ok(isBlobRef(blobRef(d)))
  assert.not.ok(isBlobRef(imageRef("redis")))
})

test("bad image names are refused with the input named", () => {
  for (const bad of ["", "a b", "ab".repeat(32), "x".repeat(201)]) {
    const e = checkImageName(bad)
    assert.is(e?._tag, "InvalidInput", bad)
  }
  assert.is(checkImageName("redis:alpine"), undefined)
})

test("GVariant strings as ostree prints them", () => {
  assert.is(parseGVariantString("'12'\n"), "12")
  assert.is(parseGVariantString(`"{\\"a\\":\\"it's \\\\ \\"}"`), `{"a":"it's \\ "}`)
  assert.is(parseGVariantString("'tab\\there'"), "tab\there")
  assert.is(parseGVariantString("'\\u00e9'"), "é")
})

test.run()
