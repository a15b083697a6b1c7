#!/usr/bin/env bash
# Checks PostgreSQL, Redis and RabbitMQ on their standard localhost ports; enables the RabbitMQ
# management UI. Where one is down it tries the start command of this project's machines, then says
# which one is missing and how to start it.
set -u
declare -A PORT=([postgresql]=5432 [redis]=6379 [rabbitmq]=5672)
declare -A START=(
  [postgresql]='pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
  [redis]='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
  [rabbitmq]='rabbitmq-server -detached'
)
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
failed=0
for name in postgresql redis rabbitmq; do
  up "${PORT[$name]}" && continue
  echo "$name is not answering on 127.0.0.1:${PORT[$name]}; starting it: ${START[$name]}"
  bash -c "${START[$name]}" >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do up "${PORT[$name]}" && break; sleep 1; done
  up "${PORT[$name]}" || { echo "ERROR: $name is down. Start it with: ${START[$name]}"; failed=1; }
done
[ $failed = 0 ] || exit 1
if command -v rabbitmq-plugins >/dev/null && ! rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
  echo "enabling the RabbitMQ management UI (rabbitmq_management, port 15672)"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
fi
for _ in $(seq 1 30); do up 15672 && break; sleep 1; done
up 15672 || echo "WARNING: the RabbitMQ management UI is not answering on http://127.0.0.1:15672"
exit 0
