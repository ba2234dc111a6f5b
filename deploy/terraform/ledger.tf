# The shared ledger (ledger = "redis", redis_url empty): a DCS Redis 6.0 instance in the function's VPC, with
# SSL (DCS offers it on Redis 6.0/7.0 basic edition only: "Transmitting DCS Redis Data with Encryption Using
# SSL", DCS user guide) and a password; the function reaches it over VPC access. It carries the protect tag,
# so no maintenance schedule ever restarts or flushes the ledger itself.
data "huaweicloud_dcs_flavors" "ledger" {
  count          = local.create_redis ? 1 : 0
  engine         = "Redis"
  engine_version = "6.0"
  cache_mode     = var.redis_cache_mode
  capacity       = var.redis_capacity
}

locals {
  ledger_flavor = local.create_redis ? data.huaweicloud_dcs_flavors.ledger[0].flavors[0] : null
  # Primary and standby zones: the flavor's first two (one for a single-node instance) unless given.
  ledger_zones = !local.create_redis ? [] : (length(var.redis_availability_zones) > 0 ? var.redis_availability_zones : slice(
    local.ledger_flavor.available_zones, 0, min(var.redis_cache_mode == "single" ? 1 : 2, length(local.ledger_flavor.available_zones))
  ))
  protect_key   = split("=", var.protect_tag)[0]
  protect_value = join("=", slice(split("=", var.protect_tag), 1, length(split("=", var.protect_tag))))
}

resource "huaweicloud_dcs_instance" "ledger" {
  count              = local.create_redis ? 1 : 0
  name               = "${var.function_name}-ledger"
  description        = "Ledger of ${var.function_name}: exactly-once claims, watermarks, window states"
  engine             = "Redis"
  engine_version     = "6.0"
  capacity           = var.redis_capacity
  flavor             = local.ledger_flavor.name
  availability_zones = local.ledger_zones
  vpc_id             = var.vpc_id
  subnet_id          = var.subnet_id
  password           = var.redis_password
  ssl_enable         = true
  whitelist_enable   = false # reachable from the VPC only; the password and TLS guard it there
  tags               = { (local.protect_key) = local.protect_value }
}
