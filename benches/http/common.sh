# Sourced by run.sh and instructions.sh: the servers they compare, and nginx set up as the
# gateway's peer.

# build_servers ROOT BUILD: builds the four bench servers when BUILD is 1, and sets BIN to the
# directory that holds them. All four are built with the `production` profile (Cargo.toml: fat
# LTO, one codegen unit), as a team would ship them.
build_servers() {
    local root=$1 build=$2
    if [ "$build" = 1 ]; then
        echo "building the servers (profile production)..."
        (cd "$root" && cargo build --profile production --quiet --example bench_server --example bench_axum \
            --example bench_hyper --example bench_gateway)
    fi
    BIN="${CARGO_TARGET_DIR:-$root/target}/production/examples"
}
#
# write_nginx_conf DIR PORT UPSTREAM MASTER [FIELDS]: writes DIR/nginx.conf for an nginx with
# one worker, listening on 127.0.0.1:PORT, proxying every path to 127.0.0.1:UPSTREAM through a
# pool of 64 keep-alive connections and adding the forwarding fields the gateway adds, so that
# both proxies do the same work. MASTER is `on` (nginx as deployed) or `off` (one process, for
# callgrind). FIELDS is `usual` (the default: the X-Forwarded-* fields and the request id, what
# an nginx deployment sends) or `gateway`: also the three fields only the gateway writes
# (`Forwarded`, its mark, the deadline; nginx keeps no deadline, so a fixed one of the same
# length), so that the upstream gets requests of the same fields from both proxies and pays
# the same to parse them.
write_nginx_conf() {
    local dir=$1 port=$2 upstream=$3 master=$4 fields=${5:-usual}
    local gateway_fields=""
    if [ "$fields" = gateway ]; then
        gateway_fields='proxy_set_header Forwarded "for=\"$remote_addr:$remote_port\";proto=$scheme;host=\"$http_host\"";
            proxy_set_header X-Microkit-Gateway forwarded;
            proxy_set_header X-Microkit-Deadline-Ms 30000;'
    fi
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
master_process $master;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    upstream backend {
        server 127.0.0.1:$upstream;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Request-Id \$request_id;
            $gateway_fields
        }
    }
}
NGINX
}

# The body `POST /echo` carries (a product); write_echo_lua DIR writes DIR/echo.lua, the wrk
# script that sends it.
ECHO_BODY='{"id":7,"name":"Lamp","price_cents":1999,"tags":["home","light"],"description":"A lamp that lights a desk."}'
write_echo_lua() {
    cat >"$1/echo.lua" <<EOF
wrk.method = "POST"
wrk.body = '$ECHO_BODY'
wrk.headers["Content-Type"] = "application/json"
EOF
}
