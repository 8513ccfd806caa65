//! A macro for S3 wrappers in this crate: methods that pass a request straight to `inner`.

macro_rules! pass {
    ($($name:ident: $input:ty => $output:ty),* $(,)?) => {
        $(
            fn $name<'life0, 'async_trait>(
                &'life0 self,
                req: S3Request<$input>,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = S3Result<S3Response<$output>>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move { self.inner.$name(req).await })
            }
        )*
    };
}

pub(crate) use pass;
