# Optional Cloud Eye alarm on the function's own metrics (ces_namespace set; empty: metrics off). With
# CES_NAMESPACE the function sends, per tick, the custom metrics success, failed, skipped, unknown, missed,
# frozen, halted and tick_duration_ms in that namespace with the dimension function_name. The alarm fires when a
# tick reports a failed, unknown or halted outcome (dcs_maintenance/report.py BAD_RESULTS: the results that make
# a tick not ok; one rule, one condition each), and notifies the SMN topic of notify_topic_urn when there is one.
resource "huaweicloud_ces_alarmrule" "failures" {
  count             = var.ces_namespace == "" ? 0 : 1
  alarm_name        = "${var.function_name}-failures"
  alarm_description = "A ${var.function_name} tick had failed, unknown or halted maintenance outcomes"
  alarm_type        = "MULTI_INSTANCE"
  alarm_enabled     = true

  metric {
    namespace = var.ces_namespace
  }

  resources {
    dimensions {
      name  = "function_name"
      value = var.function_name
    }
  }

  dynamic "condition" {
    for_each = ["failed", "unknown", "halted"]
    content {
      metric_name         = condition.value
      period              = 300
      filter              = "max"
      comparison_operator = ">"
      value               = 0
      count               = 1
      suppress_duration   = 0 # once per alarm, until it clears
      alarm_level         = 2
    }
  }

  alarm_action_enabled = var.notify_topic_urn != ""
  dynamic "alarm_actions" {
    for_each = var.notify_topic_urn == "" ? [] : [var.notify_topic_urn]
    content {
      type              = "notification"
      notification_list = [alarm_actions.value]
    }
  }
}
