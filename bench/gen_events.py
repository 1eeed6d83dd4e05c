#!/usr/bin/env python3
"""Write N standard web Purchase events (plain-text customer data) as JSON Lines.

    python3 bench/gen_events.py 100000 > /tmp/events-100k.jsonl
"""
import json
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
now = int(time.time())
out = sys.stdout
for i in range(n):
    out.write(json.dumps({
        "event_name": "Purchase", "event_time": now - 60, "action_source": "website",
        "event_id": f"order-{i}", "event_source_url": "https://shop.example.com/checkout/thank-you",
        "user_data": {
            "em": f"  Customer.{i}@Example.com ", "ph": f"+1 (650) 555-{i % 10000:04d}",
            "fn": "Jane", "ln": "Doe-Smith", "ct": "Menlo Park", "st": "California",
            "zp": "94025", "country": "US", "external_id": f"cust-{i}",
            "client_ip_address": "203.0.113.24",
            "client_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
            "fbc": "fb.1.1795300000000.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
            "fbp": f"fb.1.1795200000000.{1000000000 + i}",
        },
        "custom_data": {"value": 129.9, "currency": "usd", "contents": [
            {"id": "SKU-1001", "quantity": 1, "item_price": 79.9},
            {"id": "SKU-2040", "quantity": 2, "item_price": 20.0},
            {"id": "SKU-3300", "quantity": 1, "item_price": 10.0}]},
    }, separators=(",", ":")))
    out.write("\n")
