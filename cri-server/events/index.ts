export { EventBus, type EventBusOptions, type SubscribeOptions, type Subscription } from "./event-bus.ts";
export { ContainerEventType, containerEvent, type ContainerEvent } from "./container-event.ts";
