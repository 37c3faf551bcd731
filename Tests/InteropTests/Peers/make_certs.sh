#!/usr/bin/env bash
# A test CA and server certificates, made with the openssl CLI, in DIR:
#   ca.pem              the CA clients trust
#   server.pem/.key     for 127.0.0.1 and localhost, signed by the CA
#   client.pem/.key     a client certificate signed by the CA (mutual TLS)
#   other-ca.pem        a CA that signed nothing here (a client trusting only it must refuse the server)
#   wrongname.pem/.key  signed by the CA, but for broker.example.com only
#   expired.pem/.key    signed by the CA for 127.0.0.1, valid in 2020 only
set -euo pipefail
D=$1
mkdir -p "$D"
cd "$D"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=pinbench test CA"
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 30 -subj "/CN=some other CA"
leaf() {  # name subject san
  q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" > "$1.ext"
}
leaf server 127.0.0.1 "IP:127.0.0.1,DNS:localhost"
q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 -extfile server.ext
leaf client pinbench-client "DNS:pinbench-client"
q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 30 -extfile client.ext
leaf wrongname broker.example.com "DNS:broker.example.com"
q openssl x509 -req -in wrongname.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out wrongname.pem -days 30 -extfile wrongname.ext
# An expired certificate needs explicit dates: `openssl ca` takes them.
leaf expired 127.0.0.1 "IP:127.0.0.1,DNS:localhost"
mkdir -p db && : > db/index.txt && echo 1000 > db/serial
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
  -startdate 20200101000000Z -enddate 20200102000000Z -extfile expired.ext -notext
test -s expired.pem
