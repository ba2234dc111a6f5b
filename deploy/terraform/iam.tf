# The function's agency: FunctionGraph (op_svc_cff) acts with a custom policy that allows only what the
# function calls. Its temporary keys reach the code through the context (getSecurityAccessKey, ...).
locals {
  dcs_actions = [
    "dcs:instance:list",         # GET  /v2/{project_id}/instances            (list_instances)
    "dcs:instance:get",          # GET  /v2/{project_id}/instances/{id}       (show_instance, read-back)
    "dcs:instance:modifyStatus", # PUT  /v2/{project_id}/instances/status     (restart, soft_restart, flush, stop, start)
    # GET /v2/{project_id}/instances/{id}/backups (list_backup_records: a backup in progress holds a restart or flush)
    "dcs:instance:getDataBackupLog",
    # GET /v2/{project_id}/instances/{id}/configs (list_configurations: appendonly, a restart's data-loss mark)
    "dcs:instance:getConfiguration",
  ]
  smn_actions = [
    "smn:topic:publish", # POST /v2/{project_id}/notifications/topics/{urn}/publish (NOTIFY_SMN_TOPIC_URN)
  ]
  ces_actions = [
    "ces:metricData:create", # POST /V1.0/{project_id}/metric-data (CreateMetricData; CES_NAMESPACE)
  ]
  # What FunctionGraph itself needs to attach the function to a VPC (the Redis ledger): "Configuring the
  # Network", FunctionGraph user guide (functiongraph_01_0222), least permissions for VPC access.
  vpc_actions = [
    "vpc:ports:create",
    "vpc:ports:get",
    "vpc:ports:delete",
    "vpc:vpcs:get",
    "vpc:subnets:get",
  ]

  policy_statements = concat(
    [{ Effect = "Allow", Action = local.dcs_actions }],
    var.notify_topic_urn == "" ? [] : [{ Effect = "Allow", Action = local.smn_actions }],
    var.ces_namespace == "" ? [] : [{ Effect = "Allow", Action = local.ces_actions }],
    local.redis_ledger ? [{ Effect = "Allow", Action = local.vpc_actions }] : [],
  )

  # The projects the role is granted in: the function's region and every region a schedule may name (a
  # region's default IAM project is named after the region; schedules there must set that project's id).
  agency_projects = distinct(concat([var.region], var.dcs_regions))
}

resource "huaweicloud_identity_role" "dcs_maintenance" {
  name        = "${var.function_name}-policy"
  description = "dcs-maintenance: list DCS instances, read their backups and parameters, change their status; publish to its SMN topic"
  type        = "XA" # project-level service
  policy = jsonencode({
    Version   = "1.1"
    Statement = local.policy_statements
  })
}

resource "huaweicloud_identity_agency" "dcs_maintenance" {
  name                   = "${var.function_name}-agency"
  description            = "FunctionGraph agency of ${var.function_name}"
  delegated_service_name = "op_svc_cff" # FunctionGraph

  dynamic "project_role" {
    for_each = local.agency_projects
    content {
      project = project_role.value
      roles   = [huaweicloud_identity_role.dcs_maintenance.name]
    }
  }
}
