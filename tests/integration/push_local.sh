#!/usr/bin/env bash
# The own registry on one node: skopeo pushes real images (an OCI image, a
# multi-platform index, a Docker schema 2 image) and pulls them back
# byte-identical; then the spec's corners by hand with curl: chunked
# uploads and their Range, a chunk out of order, a wrong digest (nothing
# stored), mounts, cancel, an abandoned upload swept with its chunks, the
# storage budget, a manifest naming a missing blob, referrers with
# artifactType filtering, tags/list pagination, deletes, credentials
# (401 with a challenge, 429 after repeated failures), a mirrored
# namespace refusing pushes, and a restart keeping everything.
source "$(dirname "$0")/lib/common.sh"
need skopeo; need jq; need mdb_stat

BIG_MB=8
start_origin
push_fixtures
LAYOUTS="$WORK/layouts"
REG=fleet.local
printf 's3cret\n' | "$GEOREG" registry htpasswd alice --cost 4 >"$WORK/htpasswd" || die "registry htpasswd failed"
check "registry htpasswd writes a bcrypt line" grep -q '^alice:\$2b\$04\$' "$WORK/htpasswd"
CACHE="$WORK/cache"
cat >"$WORK/georeg.toml" <<EOF
[cache]
dir = "$CACHE"
max_size = "256MiB"
[registry]
name = "$REG"
push_htpasswd = "$WORK/htpasswd"
max_size = "64MiB"
upload_timeout = "2s"
max_auth_failures = 3
[[upstream]]
registry = "$ORIGIN"
url = "http://$ORIGIN"
EOF
start_georeg --config "$WORK/georeg.toml"
H="127.0.0.1:$GEOREG_PORT"
CREDS=alice:s3cret

# code METHOD URL [CURL ARGS...]: the status code; headers in $WORK/h, body in $WORK/b.
code() {
  local m="$1" u="$2"; shift 2
  curl -s -o "$WORK/b" -D "$WORK/h" -w '%{http_code}' -X "$m" "$@" "$u"
}
header() { tr -d '\r' <"$WORK/h" | awk -v n="$(echo "$1" | tr A-Z a-z)" -F': ' 'tolower($1)==n{print $2}'; }
errcode() { jq -r '.errors[0].code' "$WORK/b" 2>/dev/null; }
chunks() { mdb_stat -s chunks "$CACHE" | awk '/Entries:/{print $2}'; }

# ---- credentials ----
expect_eq "/v2/ without credentials: 401" 401 "$(code GET "http://$H/v2/")"
expect_eq "with a Basic challenge" "Basic realm=\"$REG\", charset=\"UTF-8\"" "$(header www-authenticate)"
expect_eq "/v2/ with credentials: 200" 200 "$(code GET "http://$H/v2/" -u $CREDS)"
expect_eq "an upload without credentials: 401" 401 "$(code POST "http://$H/v2/x/blobs/uploads/")"
expect_eq "its error is UNAUTHORIZED" UNAUTHORIZED "$(errcode)"
expect_eq "a mirrored namespace refuses pushes: 405" 405 "$(code POST "http://$H/v2/x/blobs/uploads/?ns=$ORIGIN" -u $CREDS)"
expect_eq "  with UNSUPPORTED" UNSUPPORTED "$(errcode)"
expect_eq "an unknown namespace: 404" 404 "$(code POST "http://$H/v2/x/blobs/uploads/?ns=elsewhere" -u $CREDS)"

# ---- real images with skopeo ----
SK=(skopeo copy -q --dest-tls-verify=false --src-tls-verify=false)
check "skopeo pushes an OCI image" "${SK[@]}" --dest-creds $CREDS "oci:$LAYOUTS/team_app:1.0" "docker://$H/team/app:1.0"
check "skopeo pushes a multi-platform index" "${SK[@]}" --all --dest-creds $CREDS "oci:$LAYOUTS/library_alpine:3.19" "docker://$H/library/alpine:3.19"
check "skopeo pushes a Docker schema 2 image" "${SK[@]}" --format v2s2 --dest-creds $CREDS "oci:$LAYOUTS/team_big:1.0" "docker://$H/team/big:1.0-docker"
check "skopeo pushes with --preserve-digests" "${SK[@]}" --preserve-digests --dest-creds $CREDS "oci:$LAYOUTS/team_big:1.0" "docker://$H/team/big:1.0"
dir_sums() { (cd "$1" && find . -type f ! -name version -print0 | sort -z | xargs -0 sha256sum); }
pull_back() {  # REF NAME [ARGS]
  local ref="$1" name="$2"; shift 2
  mkdir -p "$WORK/back/$name" "$WORK/direct/$name"
  "${SK[@]}" "$@" "docker://$H/$ref" "dir:$WORK/back/$name" &&
    "${SK[@]}" "$@" "oci:$LAYOUTS/$(echo "${ref%%:*}" | tr / _):${ref#*:}" "dir:$WORK/direct/$name"
}
check "pull back team/app:1.0" pull_back team/app:1.0 app
expect_eq "  byte-identical to the layout" "$(dir_sums "$WORK/direct/app")" "$(dir_sums "$WORK/back/app")"
check "pull back team/big:1.0" pull_back team/big:1.0 big
expect_eq "  byte-identical to the layout" "$(dir_sums "$WORK/direct/big")" "$(dir_sums "$WORK/back/big")"
check "pull back the whole index" pull_back library/alpine:3.19 alpine --all
expect_eq "  byte-identical to the layout" "$(dir_sums "$WORK/direct/alpine")" "$(dir_sums "$WORK/back/alpine")"
APP_DIGEST=$(curl -s -o /dev/null -D - -H "Accept: $ACCEPT_ALL" "http://$H/v2/team/app/manifests/1.0" | tr -d '\r' |
  awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
check "team/app:1.0 resolves by tag, anonymously" test -n "$APP_DIGEST"

# ---- a chunked upload by hand ----
head -c 3000000 /dev/urandom >"$WORK/blob"
BLOB_D="sha256:$(sha_of "$WORK/blob")"
head -c 1000000 "$WORK/blob" >"$WORK/part1"
tail -c +1000001 "$WORK/blob" >"$WORK/part2"
expect_eq "POST starts an upload: 202" 202 "$(code POST "http://$H/v2/hand/made/blobs/uploads/" -u $CREDS)"
LOC=$(header location)
expect_eq "  with Range 0-0" "0-0" "$(header range)"
check "  and a Location in the upload" bash -c "[[ '$LOC' == /v2/hand/made/blobs/uploads/* ]]"
expect_eq "PATCH the first chunk (chunked encoding): 202" 202 "$(code PATCH "http://$H$LOC" -u $CREDS \
  -H 'Content-Range: 0-999999' -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$WORK/part1")"
expect_eq "  Range covers it" "0-999999" "$(header range)"
expect_eq "a chunk out of order: 416" 416 "$(code PATCH "http://$H$LOC" -u $CREDS -H 'Content-Range: 5-10' --data-binary x)"
expect_eq "  with the upload's Range" "0-999999" "$(header range)"
expect_eq "upload status: 204" 204 "$(code GET "http://$H$LOC" -u $CREDS)"
expect_eq "  Range 0-999999" "0-999999" "$(header range)"
expect_eq "PUT the rest with the digest: 201" 201 "$(code PUT "http://$H$LOC?digest=$BLOB_D" -u $CREDS \
  -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/part2")"
expect_eq "  Location names the blob" "/v2/hand/made/blobs/$BLOB_D" "$(header location)"
expect_eq "  Docker-Content-Digest" "$BLOB_D" "$(header docker-content-digest)"
curl -s -o "$WORK/got" "http://$H/v2/hand/made/blobs/$BLOB_D"
expect_eq "the blob reads back" "$BLOB_D" "sha256:$(sha_of "$WORK/got")"
expect_eq "the finished upload is gone" 404 "$(code GET "http://$H$LOC" -u $CREDS)"
expect_eq "  BLOB_UPLOAD_UNKNOWN" BLOB_UPLOAD_UNKNOWN "$(errcode)"

# ---- a wrong digest stores nothing ----
head -c 2500000 /dev/urandom >"$WORK/blob2"
REAL2="sha256:$(sha_of "$WORK/blob2")"
WRONG="sha256:$(printf 'not these bytes' | sha256sum | cut -d' ' -f1)"
before=$(chunks)
expect_eq "monolithic POST with a wrong digest: 400" 400 "$(code POST "http://$H/v2/hand/made/blobs/uploads/?digest=$WRONG" \
  -u $CREDS -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/blob2")"
expect_eq "  DIGEST_INVALID" DIGEST_INVALID "$(errcode)"
expect_eq "  nothing under the wrong digest" 404 "$(code GET "http://$H/v2/hand/made/blobs/$WRONG")"
expect_eq "  nothing under the real one" 404 "$(code GET "http://$H/v2/hand/made/blobs/$REAL2")"
sleep 0.3
expect_eq "  and no chunk left in the cache" "$before" "$(chunks)"
expect_eq "monolithic POST with the right digest: 201" 201 "$(code POST "http://$H/v2/hand/made/blobs/uploads/?digest=$REAL2" \
  -u $CREDS -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/blob2")"

# ---- mount, cancel, abandon ----
expect_eq "mount from another repository: 201" 201 "$(code POST "http://$H/v2/other/repo/blobs/uploads/?mount=$BLOB_D&from=hand/made" -u $CREDS)"
expect_eq "  Location in the new repository" "/v2/other/repo/blobs/$BLOB_D" "$(header location)"
expect_eq "mount of an unknown blob falls back to an upload: 202" 202 \
  "$(code POST "http://$H/v2/other/repo/blobs/uploads/?mount=$WRONG&from=hand/made" -u $CREDS)"
LOC=$(header location)
code PATCH "http://$H$LOC" -u $CREDS --data-binary @"$WORK/part1" >/dev/null
expect_eq "cancel an upload: 204" 204 "$(code DELETE "http://$H$LOC" -u $CREDS)"
expect_eq "  it is gone" 404 "$(code GET "http://$H$LOC" -u $CREDS)"
before=$(chunks)
code POST "http://$H/v2/other/repo/blobs/uploads/" -u $CREDS >/dev/null
LOC=$(header location)
expect_eq "an upload fed 3 MB and abandoned" 202 "$(code PATCH "http://$H$LOC" -u $CREDS --data-binary @"$WORK/blob")"
sleep 0.3
check "  its chunks are in the cache meanwhile" test "$(chunks)" -gt "$before"
sleep 3
expect_eq "  after upload_timeout it is gone" 404 "$(code GET "http://$H$LOC" -u $CREDS)"
expect_eq "  with its chunks" "$before" "$(chunks)"
check "  and the sweep was logged" grep -q "abandoned after 3000000 bytes" "$GEOREG_LOG"

# ---- the own registry's budget ----
head -c $((60 << 20)) /dev/zero >"$WORK/huge"
expect_eq "a blob past [registry] max_size: 403" 403 "$(code POST "http://$H/v2/hand/made/blobs/uploads/?digest=sha256:$(sha_of "$WORK/huge")" \
  -u $CREDS -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/huge")"
expect_eq "  DENIED" DENIED "$(errcode)"

# ---- manifests: missing blobs, referrers, tags, deletes ----
printf '{}' >"$WORK/empty"
EMPTY="sha256:$(sha_of "$WORK/empty")"
code POST "http://$H/v2/team/app/blobs/uploads/?digest=$EMPTY" -u $CREDS --data-binary @"$WORK/empty" >/dev/null
APP_SIZE=$(curl -s -H "Accept: $ACCEPT_ALL" "http://$H/v2/team/app/manifests/$APP_DIGEST" | wc -c)
OCI=application/vnd.oci.image.manifest.v1+json
artifact() {  # ARTIFACT_TYPE LAYER_DIGEST
  printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":1}],"subject":{"mediaType":"%s","digest":"%s","size":%s},"annotations":{"org.example.kind":"%s"}}' \
    "$OCI" "$1" "$EMPTY" "$2" "$OCI" "$APP_DIGEST" "$APP_SIZE" "$1"
}
artifact application/vnd.example.sig "$WRONG" >"$WORK/missing.json"
expect_eq "a manifest naming a blob not pushed: 400" 400 "$(code PUT "http://$H/v2/team/app/manifests/sig" -u $CREDS -H "Content-Type: $OCI" --data-binary @"$WORK/missing.json")"
expect_eq "  MANIFEST_BLOB_UNKNOWN" MANIFEST_BLOB_UNKNOWN "$(errcode)"
artifact application/vnd.example.sig "$EMPTY" >"$WORK/sig.json"
SIG="sha256:$(sha_of "$WORK/sig.json")"
expect_eq "a manifest PUT by digest with a wrong digest: 400" 400 "$(code PUT "http://$H/v2/team/app/manifests/$WRONG" -u $CREDS -H "Content-Type: $OCI" --data-binary @"$WORK/sig.json")"
expect_eq "  DIGEST_INVALID" DIGEST_INVALID "$(errcode)"
expect_eq "an artifact with a subject, PUT by digest: 201" 201 "$(code PUT "http://$H/v2/team/app/manifests/$SIG" -u $CREDS -H "Content-Type: $OCI" --data-binary @"$WORK/sig.json")"
expect_eq "  OCI-Subject names its subject" "$APP_DIGEST" "$(header oci-subject)"
expect_eq "  Docker-Content-Digest" "$SIG" "$(header docker-content-digest)"
artifact application/vnd.example.sbom "$EMPTY" >"$WORK/sbom.json"
code PUT "http://$H/v2/team/app/manifests/sbom" -u $CREDS -H "Content-Type: $OCI" --data-binary @"$WORK/sbom.json" >/dev/null
expect_eq "referrers: 200" 200 "$(code GET "http://$H/v2/team/app/referrers/$APP_DIGEST")"
expect_eq "  an OCI index" "application/vnd.oci.image.index.v1+json" "$(header content-type)"
expect_eq "  listing both artifacts" "application/vnd.example.sbom application/vnd.example.sig" \
  "$(jq -r '[.manifests[].artifactType] | sort | join(" ")' "$WORK/b")"
expect_eq "  with their annotations" "application/vnd.example.sig" \
  "$(jq -r --arg d "$SIG" '.manifests[] | select(.digest==$d) | .annotations["org.example.kind"]' "$WORK/b")"
code GET "http://$H/v2/team/app/referrers/$APP_DIGEST?artifactType=application/vnd.example.sig" >/dev/null
expect_eq "referrers filtered by artifactType" "$SIG" "$(jq -r '[.manifests[].digest] | join(" ")' "$WORK/b")"
expect_eq "  OCI-Filters-Applied" artifactType "$(header oci-filters-applied)"
code GET "http://$H/v2/team/app/referrers/$WRONG" >/dev/null
expect_eq "referrers of a digest nobody refers to: an empty index" 0 "$(jq '.manifests | length' "$WORK/b")"

curl -s -H "Accept: $OCI" "http://$H/v2/team/app/manifests/1.0" >"$WORK/app.json"
for t in 1.1 2.0 latest; do
  code PUT "http://$H/v2/team/app/manifests/$t" -u $CREDS -H "Content-Type: $OCI" --data-binary @"$WORK/app.json" >/dev/null
done
code GET "http://$H/v2/team/app/tags/list" >/dev/null
expect_eq "tags/list: every tag, in lexical order" "1.0 1.1 2.0 latest sbom" "$(jq -r '.tags | join(" ")' "$WORK/b")"
code GET "http://$H/v2/team/app/tags/list?n=2" >/dev/null
expect_eq "tags/list?n=2" "1.0 1.1" "$(jq -r '.tags | join(" ")' "$WORK/b")"
expect_eq "  Link to the next page" '</v2/team/app/tags/list?n=2&last=1.1>; rel="next"' "$(header link)"
code GET "http://$H/v2/team/app/tags/list?n=2&last=1.1" >/dev/null
expect_eq "tags/list?n=2&last=1.1" "2.0 latest" "$(jq -r '.tags | join(" ")' "$WORK/b")"
code GET "http://$H/v2/team/app/tags/list?n=10&last=sbom" >/dev/null
expect_eq "tags/list past the last tag: empty" 0 "$(jq '.tags | length' "$WORK/b")"
expect_eq "tags/list of an unknown repository: 404" 404 "$(code GET "http://$H/v2/no/such/tags/list")"
expect_eq "  NAME_UNKNOWN" NAME_UNKNOWN "$(errcode)"

expect_eq "DELETE a tag: 202" 202 "$(code DELETE "http://$H/v2/team/app/manifests/2.0" -u $CREDS)"
expect_eq "  it no longer resolves" 404 "$(code GET "http://$H/v2/team/app/manifests/2.0")"
code GET "http://$H/v2/team/app/tags/list" >/dev/null
expect_eq "  nor is listed" "1.0 1.1 latest sbom" "$(jq -r '.tags | join(" ")' "$WORK/b")"
expect_eq "DELETE without credentials: 401" 401 "$(code DELETE "http://$H/v2/team/app/manifests/1.1")"
expect_eq "DELETE the signature by digest: 202" 202 "$(code DELETE "http://$H/v2/team/app/manifests/$SIG" -u $CREDS)"
code GET "http://$H/v2/team/app/referrers/$APP_DIGEST" >/dev/null
expect_eq "  referrers no longer list it" "application/vnd.example.sbom" "$(jq -r '[.manifests[].artifactType] | join(" ")' "$WORK/b")"
expect_eq "blob DELETE is off by default: 405" 405 "$(code DELETE "http://$H/v2/hand/made/blobs/$BLOB_D" -u $CREDS)"

# ---- a restart keeps what was pushed ----
stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
start_georeg --config "$WORK/georeg.toml"
H="127.0.0.1:$GEOREG_PORT"
rm -rf "$WORK/back/app"
check "after a restart the pushed image pulls" pull_back team/app:1.0 app
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct/app")" "$(dir_sums "$WORK/back/app")"
curl -s -o "$WORK/got" "http://$H/v2/hand/made/blobs/$BLOB_D"
expect_eq "  and the hand-made blob reads back" "$BLOB_D" "sha256:$(sha_of "$WORK/got")"

# ---- garbage collection: blobs no manifest references go after gc_grace ----
stop_georeg
sed -i 's/^\[registry\]$/[registry]\ngc_grace = "1s"/' "$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml"
H="127.0.0.1:$GEOREG_PORT"
gone() { [ "$(code GET "http://$H/v2/hand/made/blobs/$BLOB_D")" = 404 ]; }
for _ in $(seq 50); do gone && break; sleep 0.1; done
check "gc_grace 1s: the hand-made blob no manifest references is removed" gone
check "  and logged" grep -q "garbage-collected (no manifest references it) own blob $BLOB_D" "$GEOREG_LOG"
rm -rf "$WORK/back/app"
check "  the pushed image's blobs stay: it pulls whole" pull_back team/app:1.0 app
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct/app")" "$(dir_sums "$WORK/back/app")"

# ---- failed logins are limited per address (last: it locks 127.0.0.1 out for a minute) ----
expect_eq "a wrong password: 401" 401 "$(code POST "http://$H/v2/x/blobs/uploads/" -u alice:wrong)"
expect_eq "  with a challenge" "Basic realm=\"$REG\", charset=\"UTF-8\"" "$(header www-authenticate)"
for i in 2 3; do code POST "http://$H/v2/x/blobs/uploads/" -u alice:wrong >/dev/null; done
expect_eq "after max_auth_failures wrong passwords: 429" 429 "$(code POST "http://$H/v2/x/blobs/uploads/" -u $CREDS)"
expect_eq "  TOOMANYREQUESTS" TOOMANYREQUESTS "$(errcode)"
expect_eq "  anonymous pulls still work" 200 "$(code GET "http://$H/v2/team/app/manifests/1.0" -H "Accept: $ACCEPT_ALL")"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
