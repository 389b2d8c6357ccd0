import tripline
engine = tripline.Engine.builder().instance("backlog", "worker/queue-depth", params={"source": "pushed", "threshold": 100}).build()
engine.push_series("queue_depth", 250, labels={"queue": "emails"}); print(engine.run_cycle().firing)
