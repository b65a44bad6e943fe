# shellcheck shell=bash
# A throwaway PKI made with openssl, for TLS tests. Source after common.sh.
#   make_ca NAME                 -> $WORK/pki/NAME.crt, NAME.key
#   make_cert CA NAME DNS [start end]
#                                -> $WORK/pki/NAME.crt, NAME.key (SAN DNS:DNS), signed by CA;
#                                   start/end as YYYYMMDDHHMMSSZ make an expired one
PKI="$WORK/pki"
make_ca() {
  mkdir -p "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=georeg test $1" \
    -keyout "$PKI/$1.key" -out "$PKI/$1.crt" 2>/dev/null || die "make_ca $1"
}
make_cert() {
  local ca="$1" name="$2" dns="$3" start="${4:-}" end="${5:-}"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$dns" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null ||
    die "csr $name"
  printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$dns" >"$PKI/$name.ext"
  if [ -z "$start" ]; then
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
      -days 30 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null || die "sign $name"
    return
  fi
  # openssl ca can set both ends of the validity period.
  local d="$PKI/ca-$name"
  mkdir -p "$d/new"
  : >"$d/index.txt"
  echo 01 >"$d/serial"
  cat >"$d/ca.cnf" <<CNF
[ca]
default_ca = c
[c]
dir = $d
database = $d/index.txt
new_certs_dir = $d/new
serial = $d/serial
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[p]
commonName = supplied
CNF
  openssl ca -batch -config "$d/ca.cnf" -cert "$PKI/$ca.crt" -keyfile "$PKI/$ca.key" -in "$PKI/$name.csr" \
    -startdate "$start" -enddate "$end" -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null ||
    die "sign $name (dated)"
}
