// The seed's RabbitMQ send/receive program (seed/000_557db4ed9a910b63.txt, "使用 RabbitMQ"),
// as written there but for two changes: the import path (Debian packages the maintained
// github.com/rabbitmq/amqp091-go, API-compatible with github.com/streadway/amqp) and the URL,
// read from $AMQP_URL instead of amqp://guest:guest@localhost:5672/. main.go picks the
// function. Built by tests/interop/test_amqp_*.sh in GOPATH mode (GO111MODULE=off).

package main

import (
    "log"
    "os"
    amqp "github.com/rabbitmq/amqp091-go"
)

// 发送消息
func send() {
    conn, err := amqp.Dial(os.Getenv("AMQP_URL"))
    if err != nil {
        log.Fatal(err)
    }
    defer conn.Close()
    
    ch, err := conn.Channel()
    if err != nil {
        log.Fatal(err)
    }
    defer ch.Close()
    
    q, err := ch.QueueDeclare(
        "hello", // name
        false,   // durable
        false,   // delete when unused
        false,   // exclusive
        false,   // no-wait
        nil,     // arguments
    )
    if err != nil {
        log.Fatal(err)
    }
    
    body := "Hello World!"
    err = ch.Publish(
        "",     // exchange
        q.Name, // routing key
        false,  // mandatory
        false,  // immediate
        amqp.Publishing{
            ContentType: "text/plain",
            Body:        []byte(body),
        })
    if err != nil {
        log.Fatal(err)
    }
    
    log.Printf(" [x] Sent %s", body)
}

// 接收消息
func receive() {
    conn, err := amqp.Dial(os.Getenv("AMQP_URL"))
    if err != nil {
        log.Fatal(err)
    }
    defer conn.Close()
    
    ch, err := conn.Channel()
    if err != nil {
        log.Fatal(err)
    }
    defer ch.Close()
    
    q, err := ch.QueueDeclare(
        "hello", // name
        false,   // durable
        false,   // delete when unused
        false,   // exclusive
        false,   // no-wait
        nil,     // arguments
    )
    if err != nil {
        log.Fatal(err)
    }
    
    msgs, err := ch.Consume(
        q.Name, // queue
        "",     // consumer
        true,   // auto-ack
        false,  // exclusive
        false,  // no-local
        false,  // no-wait
        nil,    // args
    )
    if err != nil {
        log.Fatal(err)
    }
    
    forever := make(chan bool)
    
    go func() {
        for d := range msgs {
            log.Printf("Received a message: %s", d.Body)
        }
    }()
    
    log.Printf(" [*] Waiting for messages. To exit press CTRL+C")
    <-forever
}
